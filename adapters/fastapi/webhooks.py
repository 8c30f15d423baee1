"""Twilio's WhatsApp webhooks: inbound messages and status callbacks.

The paths are the original project's, so existing Twilio configuration keeps working.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData
from structlog.contextvars import bind_contextvars

from adapters.fastapi.errors import envelope
from adapters.fastapi.signature import OwnerLookup, TwilioOwner, signature_is_valid
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from application.use_cases.record_delivery_status import RecordDeliveryStatus, StatusUpdate

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
PREFIX = "/channels/twilio/v1/webhooks"


def _twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


def _missing(form: FormData, *names: str) -> list[dict[str, Any]]:
    return [
        {"loc": ["body", name], "msg": "Field required", "type": "missing"}
        for name in names
        if not (form.get(name) or "").strip()  # type: ignore[union-attr]
    ]


def _media(form: FormData) -> tuple[tuple[str, str], ...]:
    try:
        count = int(str(form.get("NumMedia") or 0))
    except ValueError:
        count = 0
    items = []
    for index in range(max(0, min(count, 10))):
        url = str(form.get(f"MediaUrl{index}") or "")
        if url:
            items.append((url, str(form.get(f"MediaContentType{index}") or "")))
    return tuple(items)


def make_router(
    *,
    receive_inbound: Any,
    record_status: Any,
    owners: OwnerLookup,
    public_base_url: str | None,
    validate_signature: bool = True,
) -> APIRouter:
    """``receive_inbound``/``record_status`` are FastAPI dependencies that build the use cases."""
    router = APIRouter(prefix=PREFIX, tags=["twilio"])

    async def authenticate(request: Request) -> tuple[FormData, TwilioOwner] | Response:
        form = await request.form()
        owner = owners(str(form.get("AccountSid") or "") or None)
        if owner is None:
            return envelope(request, 403, "UNKNOWN_OWNER", "unknown Twilio account")
        if validate_signature and not signature_is_valid(request, form, owner, public_base_url):
            log.warning("rejected webhook with a missing or invalid Twilio signature")
            return envelope(request, 403, "INVALID_SIGNATURE", "invalid Twilio signature")
        return form, owner

    @router.post("/inbound", response_class=Response)
    async def inbound(
        request: Request, use_case: ReceiveInboundMessage = receive_inbound
    ) -> Response:
        checked = await authenticate(request)
        if isinstance(checked, Response):
            return checked
        form, owner = checked
        missing = _missing(form, "MessageSid", "From", "To")
        if missing:
            return envelope(request, 422, "VALIDATION_ERROR", missing)
        known = {"MessageSid", "From", "To", "Body", "ProfileName"}
        message_sid = str(form["MessageSid"]).strip()
        # Every later line of this request, and the jobs it queues, carry these.
        bind_contextvars(correlation_id=message_sid, owner_id=owner.owner_id)
        result = await use_case.execute(
            InboundMessage(
                message_sid=message_sid,
                owner_id=owner.owner_id,
                from_address=str(form["From"]),
                to_address=str(form["To"]),
                body=str(form.get("Body") or ""),
                media=_media(form),
                profile_name=str(form.get("ProfileName") or "") or None,
                extra={k: str(v) for k, v in form.multi_items() if k not in known},
            )
        )
        bind_contextvars(conversation_id=result.conversation_id)
        log.info("inbound message %s", "duplicate" if result.duplicate else "stored",
                 extra={"reply_queued": result.reply_queued})
        return _twiml()

    @router.post("/status", response_class=Response)
    async def status(request: Request, use_case: RecordDeliveryStatus = record_status) -> Response:
        checked = await authenticate(request)
        if isinstance(checked, Response):
            return checked
        form, owner = checked
        bind_contextvars(message_sid=str(form.get("MessageSid") or ""), owner_id=owner.owner_id)
        missing = _missing(form, "MessageSid", "MessageStatus")
        if missing:
            return envelope(request, 422, "VALIDATION_ERROR", missing)
        await use_case.execute(
            StatusUpdate(
                message_sid=str(form["MessageSid"]).strip(),
                status=str(form["MessageStatus"]),
                error_code=str(form.get("ErrorCode") or "") or None,
            )
        )
        return _twiml()

    return router
