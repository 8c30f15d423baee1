"""arq job queue: producers enqueue through arq, arq's own Worker consumes (Redis).

Named ``arq_queue`` (like ``sqlite_queue``) so nothing can mistake it for the arq library.
"""

from adapters.arq_queue.job_queue import ArqJobQueue

__all__ = ["ArqJobQueue"]
