"""AWS SQS job queue (aiobotocore), driven by the project's worker runner."""

from adapters.sqs.job_queue import SqsJobQueue

__all__ = ["SqsJobQueue"]
