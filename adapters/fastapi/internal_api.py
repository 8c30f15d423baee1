"""The internal API: an owner's conversations and messages, and queueing a message.

Authenticated by ``X-API-Key`` or a Bearer JWT (see ``security``); every route is scoped to
the caller's owner. Lists page with an opaque cursor: ``?limit=&cursor=`` in,
``{"items": [...], "next_cursor": ...}`` out, ``next_cursor`` null on the last page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from pydantic import AfterValidator, BaseModel, Field, model_validator
from structlog.contextvars import bind_contextvars

from adapters.fastapi.openapi import error_responses
from adapters.fastapi.request_id import current_request_id
from adapters.fastapi.security import Principal
from application.errors import UnauthorizedOwner
from application.use_cases.queue_outbound import OutboundRequest, QueueOutboundMessage
from application.use_cases.read_conversations import (
    ConversationsQuery,
    ListConversationMessages,
    ListConversations,
    MessagesQuery,
)
from domain.conversation import Conversation
from domain.errors import InvalidText
from domain.message import Message
from domain.text import MAX_BODY_CHARS, check_text

PREFIX = "/api/v1"
MAX_PAGE = 200

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
# Cursors are checked by the repositories (400); ids are ULIDs, checked here.
Cursor = Annotated[str | None, Query(max_length=512)]
ConversationId = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{26}$")]
IdempotencyKey = Annotated[str | None, Header(max_length=255, pattern=r"^[\x21-\x7e]+$")]


def _text_rule(value: str) -> str:
    try:
        return check_text(value, "body", MAX_BODY_CHARS)
    except InvalidText as exc:
        raise ValueError(exc.message) from None


StoredText = Annotated[str, AfterValidator(_text_rule)]
MediaUrl = Annotated[str, Field(pattern=r"^https?://[\x21-\x7e]+$", max_length=2048)]


class ConversationOut(BaseModel):
    id: str
    contact: str
    channel: str
    status: str
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime

    @classmethod
    def of(cls, c: Conversation) -> ConversationOut:
        return cls(id=c.id, contact=c.contact, channel=c.channel, status=str(c.status),
                   created_at=c.created_at, updated_at=c.updated_at,
                   last_message_at=c.last_message_at)


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    direction: str
    type: str
    body: str
    from_address: str
    to_address: str
    status: str
    created_at: datetime
    updated_at: datetime
    provider_sid: str | None
    reply_to_id: str | None
    error_code: str | None
    # A fallback reply: the assistant could not answer and a person should.
    needs_person: bool = False

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls(id=m.id, conversation_id=m.conversation_id, direction=str(m.direction),
                   type=str(m.type), body=m.body, from_address=m.from_address,
                   to_address=m.to_address, status=str(m.status), created_at=m.created_at,
                   updated_at=m.updated_at, provider_sid=m.provider_sid,
                   reply_to_id=m.reply_to_id, error_code=m.error_code,
                   needs_person=m.metadata.get("needs_person") is True)


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class SendMessageIn(BaseModel):
    to: str = Field(max_length=64, description="whatsapp:+E.164")
    body: StoredText = Field("", max_length=MAX_BODY_CHARS)
    media_urls: list[MediaUrl] = Field(
        default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _something_to_send(self) -> SendMessageIn:
        if not self.body.strip() and not self.media_urls:
            raise ValueError("body or media_urls is required")
        return self


class MessageQueued(BaseModel):
    id: str
    conversation_id: str
    status: str
    duplicate: bool


def make_router(
    *,
    authenticate: Any,
    list_conversations: Any,
    list_messages: Any,
    queue_outbound: Any,
    channel_for: Callable[[str], str | None],
) -> APIRouter:
    """The use-case arguments are FastAPI dependencies; ``authenticate`` gives a Principal.

    ``channel_for`` maps an owner to its WhatsApp number (None: not an owner we serve).
    """
    router = APIRouter(prefix=PREFIX, tags=["internal"])

    @router.get("/conversations", response_model=ConversationPage,
                responses=error_responses(400, 401, 422, 503))
    async def conversations(
        principal: Principal = authenticate,
        use_case: ListConversations = list_conversations,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ConversationPage:
        bind_contextvars(owner_id=principal.owner_id)
        page = await use_case.execute(ConversationsQuery(principal.owner_id, limit, cursor))
        return ConversationPage(items=[ConversationOut.of(c) for c in page.items],
                                next_cursor=page.next_cursor)

    @router.get("/conversations/{conversation_id}/messages", response_model=MessagePage,
                responses=error_responses(400, 401, 404, 422, 503))
    async def messages(
        conversation_id: ConversationId,
        principal: Principal = authenticate,
        use_case: ListConversationMessages = list_messages,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> MessagePage:
        bind_contextvars(owner_id=principal.owner_id, conversation_id=conversation_id)
        page = await use_case.execute(
            MessagesQuery(principal.owner_id, conversation_id, limit, cursor))
        return MessagePage(items=[MessageOut.of(m) for m in page.items],
                           next_cursor=page.next_cursor)

    @router.post("/messages", status_code=202, response_model=MessageQueued,
                 responses=error_responses(400, 401, 403, 408, 413, 422, 503))
    async def send(
        payload: SendMessageIn,
        principal: Principal = authenticate,
        use_case: QueueOutboundMessage = queue_outbound,
        idempotency_key: IdempotencyKey = None,
    ) -> MessageQueued:
        bind_contextvars(owner_id=principal.owner_id)
        channel = channel_for(principal.owner_id)
        if channel is None:
            raise UnauthorizedOwner(f"no WhatsApp number for owner {principal.owner_id}")
        queued = await use_case.execute(OutboundRequest(
            owner_id=principal.owner_id, channel=channel, to=payload.to, body=payload.body,
            media_urls=tuple(payload.media_urls), idempotency_key=idempotency_key or None,
            correlation_id=current_request_id() or None,
        ))
        bind_contextvars(conversation_id=queued.conversation_id)
        return MessageQueued(id=queued.message_id, conversation_id=queued.conversation_id,
                             status=str(queued.status), duplicate=queued.duplicate)

    return router
