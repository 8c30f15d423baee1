"""``MessageSender`` over Twilio's Messages REST API (``POST .../Messages.json``).

Talks HTTP through an injected ``httpx.AsyncClient`` rather than the Twilio SDK: the SDK's
async client hides which transport errors happened before or after the request left, and
that distinction decides whether a retry can double-send.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from application.errors import DeliveryFailed, DeliveryUncertain
from application.ports.message_sender import OutboundEnvelope, SendReceipt
from domain.delivery_errors import Outcome, explain
from domain.message import DeliveryStatus

log = logging.getLogger("adapters.twilio")

API_VERSION = "2010-04-01"
# A Retry-After longer than this is taken as this: a job must come back within the hour.
MAX_RETRY_AFTER_SECONDS = 3600.0

# The request certainly never reached Twilio: safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class TwilioMessageSender:
    """Sends one message per call; raises ``DeliveryFailed``/``DeliveryUncertain``, never httpx."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        client: httpx.AsyncClient,
        base_url: str = "https://api.twilio.com",
        status_callback_url: str | None = None,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("account_sid and auth_token are required")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._client = client
        self._url = (
            f"{base_url.rstrip('/')}/{API_VERSION}/Accounts/{quote(account_sid, safe='')}"
            "/Messages.json"
        )
        self._status_callback_url = status_callback_url
        # Built once: the client's per-call URL merging and header handling cost about
        # 0.1 ms of CPU per send, and none of it varies between sends. ``client.send``
        # still applies the client's timeout and this auth.
        self._endpoint = httpx.URL(self._url)
        self._headers = {"Accept": "application/json"}
        self._auth = httpx.BasicAuth(account_sid, auth_token)

    def __repr__(self) -> str:
        # Keeps the token out of any debug dump of the container or the sender.
        return f"TwilioMessageSender(account_sid={self._account_sid!r}, url={self._url!r})"

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        form: dict[str, str | list[str]] = {
            "To": envelope.to_address,
            "From": envelope.from_address,
        }
        if envelope.content_sid:
            form["ContentSid"] = envelope.content_sid
            if envelope.content_variables:
                form["ContentVariables"] = json.dumps(dict(envelope.content_variables))
        else:
            form["Body"] = envelope.body
        if envelope.media_urls:
            form["MediaUrl"] = list(envelope.media_urls)
        if self._status_callback_url:
            form["StatusCallback"] = self._status_callback_url
        try:
            request = httpx.Request("POST", self._endpoint, data=form, headers=self._headers)
            response = await self._client.send(request, auth=self._auth)
        except _NOT_SENT as exc:
            raise DeliveryFailed(
                self._redact(f"Twilio unreachable: {type(exc).__name__}: {exc}"), retryable=True
            ) from exc
        except httpx.HTTPError as exc:
            # Read timeouts, dropped connections, protocol errors: Twilio may have taken it.
            raise DeliveryUncertain(
                self._redact(f"Twilio outcome unknown: {type(exc).__name__}: {exc}")
            ) from exc
        return self._receipt(response)

    def _receipt(self, response: httpx.Response) -> SendReceipt:
        payload = _json_object(response) or {}
        if response.is_success:
            sid = payload.get("sid")
            if not isinstance(sid, str) or not sid:
                # Twilio said yes but we cannot tell which message: retrying could duplicate.
                raise DeliveryUncertain(
                    f"Twilio answered {response.status_code} without a message sid"
                )
            return SendReceipt(provider_sid=sid, status=_status(payload.get("status")))
        meaning = explain(payload.get("code"), response.status_code)
        detail = payload.get("message")
        message = self._redact(
            f"Twilio answered {response.status_code}"
            + (f" (code {meaning.code}: {meaning.meaning})" if meaning.code else "")
            + (f": {detail}" if detail else "")
        )
        retry_after = (
            _retry_after(response.headers.get("retry-after")) if meaning.outcome.retryable
            else None
        )
        extra = {
            "status_code": response.status_code,
            "error_code": meaning.code,
            "outcome": str(meaning.outcome),
        }
        if meaning.outcome is Outcome.BAD_CREDENTIALS:
            # Every send of this account fails the same way until someone fixes the token:
            # an operator must hear of it, and no retry can help.
            log.error("twilio refused the account's credentials",
                      extra={**extra, "alert": True, "account_sid": self._account_sid})
        else:
            log.warning("twilio send failed", extra=extra)
        raise DeliveryFailed(
            message,
            retryable=meaning.outcome.retryable,
            error_code=meaning.code,
            outcome=meaning.outcome,
            retry_after=retry_after,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._auth_token, "***")


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    # Proxies and load balancers answer HTML; such a body just carries no Twilio code.
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _retry_after(raw: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; None when absent or bad."""
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return min(float(raw), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _status(raw: object) -> DeliveryStatus:
    try:
        return DeliveryStatus(str(raw))
    except ValueError:
        # Twilio adds statuses over time; a taken message is at least queued.
        return DeliveryStatus.QUEUED
