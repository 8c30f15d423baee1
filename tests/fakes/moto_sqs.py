"""moto's SQS in server mode on loopback, and fresh queues for each test.

Import the fixtures into a test module (``from tests.fakes.moto_sqs import moto_sqs, ...``).
Clients get the endpoint, a region and dummy credentials explicitly, so nothing reads
~/.aws and nothing can reach AWS.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # moto accepts anything


@dataclass(frozen=True)
class MotoSqs:
    endpoint_url: str
    server: Any

    def client(self) -> Any:
        """A synchronous boto3 client for test set-up and inspection."""
        import boto3
        import botocore.session

        core = botocore.session.Session()
        core.set_config_variable("config_file", os.devnull)
        core.set_config_variable("credentials_file", os.devnull)
        session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION, botocore_session=core,
        )
        return session.client("sqs", endpoint_url=self.endpoint_url)

    def create_queues(self, *, fifo: bool = True) -> tuple[str, str]:
        """A new main queue and its "-dlq" twin with unique names; returns both URLs."""
        name = f"jobs-{uuid.uuid4().hex[:12]}"
        suffix = ".fifo" if fifo else ""
        attributes = {"FifoQueue": "true"} if fifo else {}
        client = self.client()
        main = client.create_queue(QueueName=name + suffix, Attributes=attributes)
        dead = client.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=attributes)
        return main["QueueUrl"], dead["QueueUrl"]


def start_moto() -> MotoSqs:
    from moto.server import ThreadedMotoServer

    from tests.conftest import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return MotoSqs(endpoint_url=f"http://127.0.0.1:{port}", server=server)


@pytest.fixture(scope="session")
def moto_sqs() -> Iterator[MotoSqs]:
    moto = start_moto()
    yield moto
    moto.server.stop()


def queue_options(moto: MotoSqs) -> dict[str, Any]:
    return {"endpoint_url": moto.endpoint_url, "region": REGION,
            "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY}


@pytest.fixture
def sqs_queues(moto_sqs: MotoSqs) -> Callable[..., tuple[str, str]]:
    return moto_sqs.create_queues
