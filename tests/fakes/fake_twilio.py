"""A protocol double of Twilio's Messages REST API, served over real loopback sockets.

It speaks the parts of ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` the project
relies on, the way Twilio does: HTTP basic auth with the account sid and auth token (401,
code 20003 otherwise), form-encoded ``To``/``From``/``Body``/``MediaUrl``/``StatusCallback``,
validation errors as Twilio's JSON error body (``code``, ``message``, ``more_info``,
``status``), and a 201 with a message resource (``sid`` = ``SM`` + 32 hex, ``status``
``queued``). Bodies over 1,600 characters are refused (21617), as Twilio does; a
``ContentSid`` (with ``ContentVariables``) must be one of ``templates`` (21655 otherwise).
Tests can script failures (``fail_next``: a code, a ``Retry-After``, mid-way through a
series) and slow answers (``delay_seconds``).

Accepted requests are recorded *before* any delay, like a real provider that took the
message and then answered slowly: this is the case ``DeliveryUncertain`` exists for.

Usage::

    with FakeTwilioServer() as twilio:
        ...  # point a sender at twilio.base_url with twilio.account_sid / twilio.auth_token
        twilio.wait_for_sends(1)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.threaded_server import ThreadedServer

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"  # test-only value
DEFAULT_TEMPLATE_SID = "HX" + "a" * 32
# Twilio refuses longer bodies with 21617.
MAX_BODY_CHARS = 1600


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it; ``sid`` is what it answered (None when refused)."""

    account_sid: str
    auth_username: str | None
    to: str | None
    from_: str | None
    body: str | None
    media_urls: tuple[str, ...]
    status_callback: str | None
    form: tuple[tuple[str, str], ...]
    content_sid: str | None
    content_variables: str | None
    sid: str | None
    status_code: int
    received_at: float = 0.0  # time.monotonic() on arrival


@dataclass(frozen=True, slots=True)
class _ScriptedFailure:
    status: int
    code: int | None
    message: str
    retry_after: str | None = None
    # Applies once this many messages were accepted (a failure mid-way through a series).
    after_accepted: int = 0


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    """Twilio's REST error body."""
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class FakeTwilioServer:
    """Runs the fake in a uvicorn thread on 127.0.0.1 with an OS-chosen free port."""

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        delay_seconds: float = 0.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        # Further accounts (subaccounts, other owners) this fake serves: sid -> token.
        self.other_accounts: dict[str, str] = {}
        self.delay_seconds = delay_seconds
        # Status the 201 carries; tests change it to exercise status mapping.
        self.reply_status = "queued"
        # Content API templates the account has (ContentSid); others are refused (21655).
        self.templates: set[str] = {DEFAULT_TEMPLATE_SID}
        # Sids the next accepted messages get (tests that must know a sid beforehand).
        self.next_sids: deque[str] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sent: list[RecordedRequest] = []
        self._attempts: list[RecordedRequest] = []
        self._failures: deque[_ScriptedFailure] = deque()
        self._stopping = threading.Event()
        self.base_url = ""
        # Inbound media: id -> (bytes, content type); failures scripted per id.
        self._media: dict[str, tuple[bytes, str]] = {}
        self._media_failures: dict[str, deque[int]] = {}
        self.media_requests: list[tuple[str, bool]] = []  # (path, authenticated)
        self.app = Starlette(
            routes=[
                Route(
                    f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json",
                    self._create_message,
                    methods=["POST"],
                ),
                Route(
                    f"/{API_VERSION}/Accounts/{{account_sid}}/Messages/{{message}}/Media/"
                    "{media_id}",
                    self._media_resource,
                    methods=["GET"],
                ),
                Route("/cdn/{media_id}", self._media_cdn, methods=["GET"]),
            ]
        )
        self._http = ThreadedServer(self.app, "fake-twilio")

    # -- scripting and inspection (thread-safe) ------------------------------------------

    def fail_next(
        self,
        *,
        status: int,
        code: int | None = None,
        times: int = 1,
        message: str | None = None,
        retry_after: str | None = None,
        after_accepted: int = 0,
    ) -> None:
        """The next ``times`` authenticated requests get this error, with a
        ``Retry-After`` header when given; with ``after_accepted``, only once that many
        messages were accepted.

        With ``code=None`` the body is plain text, as from a proxy in front of Twilio.
        """
        failure = _ScriptedFailure(status, code, message or f"Scripted failure {status}",
                                   retry_after, after_accepted)
        with self._lock:
            self._failures.extend([failure] * times)

    def host_media(self, data: bytes, content_type: str, *, fail_first: int = 0,
                   fail_status: int = 503, account_sid: str | None = None) -> str:
        """Serve ``data`` as an inbound media item; its URL is what a webhook carries.

        Like Twilio: the URL needs the account's Basic auth and answers 307 to a CDN
        URL that needs none. ``fail_first`` requests get ``fail_status`` first.
        ``account_sid``: whose message it came with (default: the fake's account).
        """
        media_id = "ME" + uuid.uuid4().hex
        with self._lock:
            self._media[media_id] = (data, content_type)
            self._media_failures[media_id] = deque([fail_status] * fail_first)
        account = account_sid or self.account_sid
        return (f"{self.base_url}/{API_VERSION}/Accounts/{account}/Messages/"
                f"MM{uuid.uuid4().hex}/Media/{media_id}")

    @property
    def sent(self) -> list[RecordedRequest]:
        """Requests the fake accepted (answered 201), oldest first."""
        with self._lock:
            return list(self._sent)

    @property
    def attempts(self) -> list[RecordedRequest]:
        """Every request that reached the Messages route, refused ones included."""
        with self._lock:
            return list(self._attempts)

    def reset(self) -> None:
        with self._lock:
            self._sent.clear()
            self._attempts.clear()
            self._failures.clear()
        self.delay_seconds = 0.0
        self.reply_status = "queued"

    def wait_for_sends(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Blocks until at least ``n`` sends were accepted; raises TimeoutError otherwise.

        Blocking: from async code, use ``wait_for_sends_async``.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._sent) >= n, timeout):
                raise TimeoutError(f"expected {n} sends, got {len(self._sent)}")
            return list(self._sent)

    async def wait_for_sends_async(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while True:
            sent = self.sent
            if len(sent) >= n:
                return sent
            if time.monotonic() >= deadline:
                raise TimeoutError(f"expected {n} sends, got {len(sent)}")
            await asyncio.sleep(0.02)

    # -- the protocol ------------------------------------------------------------------

    async def _create_message(self, request: Request) -> Response:
        account_sid = request.path_params["account_sid"]
        credentials = _basic_credentials(request)
        form = await request.form()
        pairs = tuple((k, v) for k, v in form.multi_items() if isinstance(v, str))
        fields = dict(pairs)
        media = tuple(v for v in form.getlist("MediaUrl") if isinstance(v, str))

        response, sid = self._decide(account_sid, credentials, fields, media)
        recorded = RecordedRequest(
            account_sid=account_sid,
            auth_username=credentials[0] if credentials else None,
            to=fields.get("To"),
            from_=fields.get("From"),
            body=fields.get("Body"),
            media_urls=media,
            status_callback=fields.get("StatusCallback"),
            form=pairs,
            content_sid=fields.get("ContentSid"),
            content_variables=fields.get("ContentVariables"),
            received_at=time.monotonic(),
            sid=sid,
            status_code=response.status_code,
        )
        with self._changed:
            self._attempts.append(recorded)
            if sid is not None:
                self._sent.append(recorded)
            self._changed.notify_all()
        await self._delay()
        return response

    def _authentic(self, account_sid: str, credentials: tuple[str, str]) -> bool:
        """The credentials are the path's account's own (each account its token)."""
        tokens = {self.account_sid: self.auth_token} | self.other_accounts
        return credentials[0] == account_sid and tokens.get(account_sid) == credentials[1]

    def _decide(
        self,
        account_sid: str,
        credentials: tuple[str, str] | None,
        fields: dict[str, str],
        media: tuple[str, ...],
    ) -> tuple[Response, str | None]:
        """The answer and, when the message was accepted, its new sid."""
        # Same order as Twilio: authenticate, then validate, then create.
        if credentials is None or not self._authentic(account_sid, credentials):
            response = twilio_error(401, 20003, "Authenticate")
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response, None
        with self._lock:
            failure = None
            if self._failures and len(self._sent) >= self._failures[0].after_accepted:
                failure = self._failures.popleft()
        if failure is not None:
            scripted: Response = (
                PlainTextResponse(failure.message, status_code=failure.status)
                if failure.code is None
                else twilio_error(failure.status, failure.code, failure.message)
            )
            if failure.retry_after is not None:
                scripted.headers["Retry-After"] = failure.retry_after
            return scripted, None
        if not fields.get("To"):
            return twilio_error(400, 21604, "A 'To' phone number is required."), None
        if not fields.get("From"):
            return twilio_error(400, 21603, "A 'From' phone number is required."), None
        content_sid = fields.get("ContentSid")
        if content_sid is not None and content_sid not in self.templates:
            return twilio_error(400, 21655, "The ContentSid is Invalid."), None
        if not fields.get("Body") and not media and content_sid is None:
            return twilio_error(400, 21602, "Message body is required."), None
        if len(fields.get("Body", "")) > MAX_BODY_CHARS:
            return twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            ), None
        with self._lock:
            sid = self.next_sids.popleft() if self.next_sids else "SM" + uuid.uuid4().hex
        return JSONResponse(self._resource(sid, account_sid, fields, media), 201), sid

    def _resource(
        self, sid: str, account_sid: str, fields: dict[str, str], media: tuple[str, ...]
    ) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=False)
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
        return {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": fields.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": fields["From"],
            "messaging_service_sid": None,
            "num_media": str(len(media)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": self.reply_status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": fields["To"],
            "uri": f"{uri}.json",
        }

    async def _media_resource(self, request: Request) -> Response:
        credentials = _basic_credentials(request)
        authenticated = credentials is not None and self._authentic(
            request.path_params["account_sid"], credentials)
        media_id = request.path_params["media_id"]
        with self._lock:
            self.media_requests.append((request.url.path, authenticated))
            failures = self._media_failures.get(media_id)
            failure = failures.popleft() if failures else None
            known = media_id in self._media
        if not authenticated:
            return twilio_error(401, 20003, "Authenticate")
        if failure is not None:
            return twilio_error(failure, 20500, "Scripted media failure")
        if not known:
            return twilio_error(404, 20404, "The requested resource was not found")
        return Response(status_code=307, headers={"Location": f"{self.base_url}/cdn/{media_id}"})

    async def _media_cdn(self, request: Request) -> Response:
        with self._lock:
            item = self._media.get(request.path_params["media_id"])
        if item is None:
            return PlainTextResponse("not found", status_code=404)
        return Response(item[0], media_type=item[1])

    async def _delay(self) -> None:
        # Sleeps in slices so stopping the server never waits out a long delay.
        deadline = time.monotonic() + self.delay_seconds
        while not self._stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> FakeTwilioServer:
        self._stopping.clear()
        self._http.start(timeout)
        self.base_url = self._http.base_url
        return self

    def stop(self) -> None:
        self._stopping.set()  # cuts any scripted delay short
        self._http.stop()

    def __enter__(self) -> FakeTwilioServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def fake_twilio_server(**kwargs: Any) -> Iterator[FakeTwilioServer]:
    """For fixtures: ``yield from`` or ``with fake_twilio_server() as twilio: yield twilio``."""
    with FakeTwilioServer(**kwargs) as server:
        yield server
