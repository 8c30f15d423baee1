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
from adapters.fastapi.openapi import twilio_form, twiml_responses
from adapters.fastapi.signature import (
    OwnerLookup,
    TrustedProxies,
    TwilioOwner,
    signature_is_valid,
)
from adapters.fastapi.twilio_form import (
    FormRefused,
    check_content_type,
    format_errors,
    media_items,
    parse_form,
)
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from application.use_cases.record_delivery_status import RecordDeliveryStatus, StatusUpdate

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
PREFIX = "/channels/twilio/v1/webhooks"


def _twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


def make_router(
    *,
    receive_inbound: Any,
    record_status: Any,
    owners: OwnerLookup,
    public_base_url: str | None,
    validate_signature: bool = True,
    trusted_proxies: TrustedProxies | None = None,
    max_form_fields: int = 100,
) -> APIRouter:
    """``receive_inbound``/``record_status`` are FastAPI dependencies that build the use cases."""
    router = APIRouter(prefix=PREFIX, tags=["twilio"])

    async def authenticate(
        request: Request, required: tuple[str, ...], number_field: str
    ) -> tuple[FormData, TwilioOwner] | Response:
        """``number_field``: the form field holding the owner's own number (``To`` of an
        inbound message, ``From`` of a status callback)."""
        # Cheap refusals first; the body's size was bounded while it was read.
        try:
            check_content_type(request.headers.get("content-type"))
            form = parse_form(await request.body(), max_form_fields)
        except FormRefused as refused:
            return envelope(request, refused.status, refused.code, refused.detail)
        # The owner of this account and number (a disabled owner, or a number of another
        # owner, is none): refused before anything is stored.
        owner = await owners(str(form.get("AccountSid") or "") or None,
                             str(form.get(number_field) or "") or None)
        if owner is None:
            return envelope(request, 403, "UNKNOWN_OWNER", "unknown Twilio account or number")
        if validate_signature and not signature_is_valid(
            request, form, owner, public_base_url, trusted_proxies
        ):
            log.warning("rejected webhook with a missing or invalid Twilio signature")
            return envelope(request, 403, "INVALID_SIGNATURE", "invalid Twilio signature")
        errors = format_errors(form, required)
        if errors:
            return envelope(request, 422, "VALIDATION_ERROR", errors)
        return form, owner

    @router.post("/inbound", response_class=Response, responses=twiml_responses(),
                 openapi_extra=twilio_form(["MessageSid", "From", "To"],
                                           ["AccountSid", "Body", "NumMedia", "ProfileName",
                                            "Latitude", "Longitude", "Address", "Label",
                                            "ButtonPayload", "ButtonText"]))
    async def inbound(
        request: Request, use_case: ReceiveInboundMessage = receive_inbound
    ) -> Response:
        checked = await authenticate(request, ("MessageSid", "From", "To"), "To")
        if isinstance(checked, Response):
            return checked
        form, owner = checked
        known = {"MessageSid", "From", "To", "Body", "ProfileName"}
        message_sid = str(form["MessageSid"])
        # Every later line of this request, and the jobs it queues, carry these.
        bind_contextvars(correlation_id=message_sid, owner_id=owner.owner_id)
        result = await use_case.execute(
            InboundMessage(
                message_sid=message_sid,
                owner_id=owner.owner_id,
                from_address=str(form["From"]),
                to_address=str(form["To"]),
                body=str(form.get("Body") or ""),
                media=media_items(form),
                profile_name=str(form.get("ProfileName") or "") or None,
                extra={k: str(v) for k, v in form.multi_items() if k not in known},
            )
        )
        # Said by the request's access line, with everything bound above.
        bind_contextvars(conversation_id=result.conversation_id,
                         inbound="duplicate" if result.duplicate else "stored",
                         reply_queued=result.reply_queued)
        return _twiml()

    @router.post("/status", response_class=Response, responses=twiml_responses(),
                 openapi_extra=twilio_form(["MessageSid", "MessageStatus"],
                                           ["AccountSid", "ErrorCode"]))
    async def status(request: Request, use_case: RecordDeliveryStatus = record_status) -> Response:
        checked = await authenticate(request, ("MessageSid", "MessageStatus"), "From")
        if isinstance(checked, Response):
            return checked
        form, owner = checked
        bind_contextvars(message_sid=str(form.get("MessageSid") or ""), owner_id=owner.owner_id)
        await use_case.execute(
            StatusUpdate(
                message_sid=str(form["MessageSid"]),
                status=str(form["MessageStatus"]),
                error_code=str(form.get("ErrorCode") or "") or None,
            )
        )
        return _twiml()

    return router
