"""``wta simulate``: what Twilio would post for one WhatsApp message, signed like Twilio.

The reply is read back from the configured database, which the server shares.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid

import httpx
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from adapters.fastapi.webhooks import PREFIX
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from bootstrap.container import Resources, build_container
from bootstrap.settings import Settings


def inbound_params(settings: Settings, text: str, contact: str, message_sid: str) -> dict[str, str]:
    return {
        "MessageSid": message_sid,
        "SmsMessageSid": message_sid,
        "SmsSid": message_sid,
        "AccountSid": settings.owner_account_sid,
        "MessagingServiceSid": "",
        "From": contact,
        "To": settings.owner_phone_number,
        "Body": text,
        "NumMedia": "0",
        "NumSegments": "1",
        "ProfileName": "Simulator",
        "WaId": re.sub(r"\D", "", contact),
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


def sign(settings: Settings, url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(settings.owner_auth_token).compute_signature(url, params))


async def simulate(
    settings: Settings, text: str, *, contact: str, base_url: str | None, timeout: float
) -> int:
    # A wildcard bind is reached on loopback, the address the server then checks against.
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host  # noqa: S104
    base = (base_url or f"http://{host}:{settings.api_port}").rstrip("/")
    target = f"{base}{PREFIX}/inbound"
    # Twilio signs the public URL it calls; so does the simulator.
    signed_url = f"{settings.api_public_base_url}{PREFIX}/inbound" if settings.api_public_base_url \
        else target
    message_sid = "SM" + uuid.uuid4().hex
    params = inbound_params(settings, text, contact, message_sid)
    headers = {"X-Twilio-Signature": sign(settings, signed_url, params)}
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=15.0) as client:
        try:
            response = await client.post(target, data=params, headers=headers)
        except httpx.HTTPError as exc:
            print(f"wta: cannot reach {target}: {type(exc).__name__} (is `make run` up?)",
                  file=sys.stderr)
            return 1
    if response.status_code != 200:
        print(f"wta: server answered {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    print(f"> {text}  ({contact}, {message_sid})")
    if settings.database_backend == "memory":
        print("(DATABASE_BACKEND=memory: the reply lives in the server's memory; see its log)")
        return 0
    reply = await _wait_for_reply(settings, message_sid, timeout)
    if reply is None:
        print(f"wta: no reply within {timeout:.0f}s", file=sys.stderr)
        return 1
    print(f"< {reply}  ({time.monotonic() - started:.2f}s)")
    return 0


async def _wait_for_reply(settings: Settings, message_sid: str, timeout: float) -> str | None:
    container = build_container(settings)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with container[UnitOfWork] as uow:
                messages = uow.repository(MessageRepository)
                inbound = await messages.get_by_provider_sid(message_sid)
                reply = await messages.get_reply_to(inbound.id) if inbound else None
            if reply is not None:
                return reply.body
            await asyncio.sleep(0.05)
        return None
    finally:
        await container[Resources].aclose()
