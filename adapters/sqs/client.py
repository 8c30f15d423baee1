"""One lazily created aiobotocore SQS client, and SQS errors translated at the edge.

Every call goes through ``SqsClient.call``: botocore, aiohttp and timeout errors become
``QueueUnavailable`` (code and SQS message only: never the endpoint's credentials), an
oversized message becomes ``PayloadTooLarge`` and a receipt handle that no longer holds the
message becomes ``LeaseLost``, which the queue treats as "someone else has it now".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError

from application.errors import PayloadTooLarge, QueueUnavailable

# Long polls last up to 20 s; the read timeout must outlast them.
MAX_WAIT_SECONDS = 20
_READ_TIMEOUT = MAX_WAIT_SECONDS + 10
_CONNECT_TIMEOUT = 5
_BATCH_RETRIES = 3
_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
           "ApproximateNumberOfMessagesDelayed")
_STALE_CODES = frozenset({
    "ReceiptHandleIsInvalid", "AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight",
})


class LeaseLost(Exception):
    """The receipt handle no longer refers to a message this consumer holds."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))[:300]


def translate(operation: str, exc: BaseException) -> Exception:
    if isinstance(exc, ClientError):
        code, message = _code(exc), _message(exc)
        lowered = message.lower()
        if code in _STALE_CODES or "receipt handle" in lowered or "receipthandle" in lowered:
            return LeaseLost(f"{operation}: {code}")
        if "shorter than" in lowered or "too long" in lowered:
            return PayloadTooLarge(f"SQS refused the message as too large: {message}")
        return QueueUnavailable(f"SQS {operation} failed: {code}: {message}")
    # BotoCoreError, aiohttp and timeouts: the class name says enough and holds no secret.
    return QueueUnavailable(f"SQS {operation} failed: {type(exc).__name__}")


class SqsClient:
    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        max_pool_connections: int = 20,
    ) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._max_pool_connections = max_pool_connections
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock: asyncio.Lock | None = None
        self.closed = False

    async def _get(self) -> Any:
        if self.closed:
            raise QueueUnavailable("SQS queue is closed")
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None and not self.closed:
                self._client = await self._open()
        if self._client is None:
            raise QueueUnavailable("SQS queue is closed")
        return self._client

    async def _open(self) -> Any:
        session = AioSession()
        credentials: dict[str, str] = {}
        if self._access_key_id and self._secret_access_key:
            # Explicit credentials: nothing to look up, so no shared config file is read.
            session.set_config_variable("config_file", os.devnull)
            session.set_config_variable("credentials_file", os.devnull)
            credentials = {"aws_access_key_id": self._access_key_id,
                           "aws_secret_access_key": self._secret_access_key}
        config = AioConfig(
            connect_timeout=_CONNECT_TIMEOUT,
            read_timeout=_READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": 3},
            max_pool_connections=self._max_pool_connections,
        )
        stack = contextlib.AsyncExitStack()
        try:
            client = await stack.enter_async_context(session.create_client(
                "sqs", region_name=self._region, endpoint_url=self._endpoint_url,
                config=config, **credentials,
            ))
        except (BotoCoreError, ValueError) as exc:
            await stack.aclose()
            raise QueueUnavailable(f"SQS client could not be created: {type(exc).__name__}") \
                from exc
        self._stack = stack
        return client

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        client = await self._get()
        try:
            response: dict[str, Any] = await getattr(client, operation)(**params)
        except (BotoCoreError, ClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise translate(operation, exc) from exc
        return response

    async def batch(
        self, operation: str, queue_url: str, entries: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Run a *Batch operation in chunks of 10, retrying entries that failed on SQS's side.

        Returns the entries that failed through the sender's fault (a stale receipt handle,
        say) for the caller to judge. Entries SQS keeps failing on its side raise
        ``QueueUnavailable``: a batch never drops an entry silently.
        """
        rejected: list[dict[str, Any]] = []
        for start in range(0, len(entries), 10):
            pending = {str(i): dict(e) for i, e in enumerate(entries[start:start + 10])}
            for _ in range(_BATCH_RETRIES):
                request = [{**entry, "Id": key} for key, entry in pending.items()]
                response = await self.call(operation, QueueUrl=queue_url, Entries=request)
                retry: dict[str, dict[str, Any]] = {}
                for failure in response.get("Failed", []):
                    entry = pending[failure["Id"]]
                    if failure.get("SenderFault"):
                        rejected.append({**entry, "Code": failure.get("Code", "")})
                    else:
                        retry[failure["Id"]] = entry
                pending = retry
                if not pending:
                    break
                await asyncio.sleep(0.05)  # SQS-side failures are transient; a short pause
            if pending:
                raise QueueUnavailable(
                    f"SQS {operation} kept failing for {len(pending)} of its entries"
                )
        return rejected

    async def approximate_count(self, queue_url: str) -> int:
        """Visible + in-flight + delayed messages (GetQueueAttributes; lags on AWS)."""
        response = await self.call("get_queue_attributes", QueueUrl=queue_url,
                                   AttributeNames=list(_COUNTS))
        return sum(int(v) for v in response.get("Attributes", {}).values())

    async def close(self) -> None:
        self.closed = True
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()
