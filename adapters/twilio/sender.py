"""``MessageSender`` over Twilio's Messages REST API (``POST .../Messages.json``).

Talks HTTP through an injected ``httpx.AsyncClient`` rather than the Twilio SDK: the SDK's
async client hides which transport errors happened before or after the request left, and
that distinction decides whether a retry can double-send.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from application.errors import DeliveryFailed, DeliveryUncertain
from application.ports.message_sender import OutboundEnvelope, SendReceipt
from domain.message import DeliveryStatus

log = logging.getLogger("adapters.twilio")

API_VERSION = "2010-04-01"

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

    def __repr__(self) -> str:
        # Keeps the token out of any debug dump of the container or the sender.
        return f"TwilioMessageSender(account_sid={self._account_sid!r}, url={self._url!r})"

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        form: dict[str, str | list[str]] = {
            "To": envelope.to_address,
            "From": envelope.from_address,
            "Body": envelope.body,
        }
        if envelope.media_urls:
            form["MediaUrl"] = list(envelope.media_urls)
        if self._status_callback_url:
            form["StatusCallback"] = self._status_callback_url
        try:
            response = await self._client.post(
                self._url,
                data=form,
                auth=httpx.BasicAuth(self._account_sid, self._auth_token),
                headers={"Accept": "application/json"},
            )
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
        code = payload.get("code")
        error_code = str(code) if code is not None else None
        detail = payload.get("message")
        message = self._redact(
            f"Twilio answered {response.status_code}"
            + (f" (code {error_code})" if error_code else "")
            + (f": {detail}" if detail else "")
        )
        retryable = response.status_code == 429 or response.status_code >= 500
        log.warning(
            "twilio send failed",
            extra={"status_code": response.status_code, "error_code": error_code},
        )
        raise DeliveryFailed(message, retryable=retryable, error_code=error_code)

    def _redact(self, text: str) -> str:
        return text.replace(self._auth_token, "***")


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    # Proxies and load balancers answer HTML; such a body just carries no Twilio code.
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _status(raw: object) -> DeliveryStatus:
    try:
        return DeliveryStatus(str(raw))
    except ValueError:
        # Twilio adds statuses over time; a taken message is at least queued.
        return DeliveryStatus.QUEUED
