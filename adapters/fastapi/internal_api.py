"""The internal API: an owner's conversations and messages, and queueing a message.

Authenticated by ``X-API-Key`` or a Bearer JWT (see ``security``); every route is scoped to
the caller's owner. Lists page with an opaque cursor: ``?limit=&cursor=`` in,
``{"items": [...], "next_cursor": ...}`` out, ``next_cursor`` null on the last page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
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
from domain.inbound_content import MediaKind
from domain.message import Message
from domain.outbound_parts import PartProgress
from domain.templates import MAX_VARIABLE_CHARS, MAX_VARIABLE_NAME_CHARS, MAX_VARIABLES, Template
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
ContentSid = Annotated[str, Field(pattern=r"^HX[0-9a-fA-F]{32}$")]
VariableName = Annotated[str, Field(min_length=1, max_length=MAX_VARIABLE_NAME_CHARS)]
VariableValue = Annotated[str, AfterValidator(_text_rule), Field(max_length=MAX_VARIABLE_CHARS)]


class ConversationOut(BaseModel):
    id: str
    contact: str
    channel: str
    status: str
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime
    holder: str = Field("bot", description="'bot', or the agent id holding the conversation")
    held_since: datetime | None = None
    held_until: datetime | None = Field(None, description="when the hold times out, if ever")
    needs_person: bool = Field(False, description="the assistant gave up on a reply")
    closed_reason: str | None = None

    @classmethod
    def of(cls, c: Conversation, now: datetime | None = None) -> ConversationOut:
        # A hold past its end has timed out back to the bot, whatever the row still says.
        holder = c.held_by(now or datetime.now(UTC))
        return cls(id=c.id, contact=c.contact, channel=c.channel, status=str(c.status),
                   created_at=c.created_at, updated_at=c.updated_at,
                   last_message_at=c.last_message_at, holder=holder or "bot",
                   held_since=c.held_since if holder else None,
                   held_until=c.held_until if holder else None,
                   needs_person=c.needs_person, closed_reason=c.closed_reason)


class LocationOut(BaseModel):
    latitude: float
    longitude: float
    address: str | None = None
    label: str | None = None


class ButtonOut(BaseModel):
    payload: str
    text: str


class MediaOut(BaseModel):
    url: str
    content_type: str
    kind: str
    blob_key: str | None = None


class ContentOut(BaseModel):
    """What the message carries, by kind; older rows read as text or their media."""

    kind: str
    location: LocationOut | None = None
    button: ButtonOut | None = None
    media: list[MediaOut] = Field(default_factory=list)

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> ContentOut:
        content = metadata.get("content") or {}
        media = [MediaOut(url=m.get("url", ""), content_type=m.get("content_type", ""),
                          kind=m.get("kind") or str(MediaKind.of(m.get("content_type", ""))),
                          blob_key=m.get("blob_key"))
                 for m in metadata.get("media", []) if isinstance(m, dict)]
        kind = content.get("kind") or (media[0].kind if media else "text")
        location, button = content.get("location"), content.get("button")
        return cls(kind=kind, media=media,
                   location=LocationOut.model_validate(location) if location else None,
                   button=ButtonOut.model_validate(button) if button else None)


class ErrorOut(BaseModel):
    code: str | None
    outcome: str
    meaning: str


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
    error: ErrorOut | None = Field(None, description="what error_code means, when known")
    content: ContentOut
    parts: int | None = Field(None, description="Twilio messages an outbound body went out as")
    # A fallback reply: the assistant could not answer and a person should.
    needs_person: bool = False

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        progress = PartProgress.from_metadata(m.metadata)
        error = m.metadata.get("error")
        return cls(id=m.id, conversation_id=m.conversation_id, direction=str(m.direction),
                   type=str(m.type), body=m.body, from_address=m.from_address,
                   to_address=m.to_address, status=str(m.status), created_at=m.created_at,
                   updated_at=m.updated_at, provider_sid=m.provider_sid,
                   reply_to_id=m.reply_to_id, error_code=m.error_code,
                   error=ErrorOut.model_validate(error) if isinstance(error, dict) else None,
                   content=ContentOut.of(m.metadata),
                   parts=progress.total if progress else None,
                   needs_person=m.metadata.get("needs_person") is True)


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class SendMessageIn(BaseModel):
    to: str = Field(max_length=64, description="whatsapp:+E.164")
    # 4,096 (three parts) rather than the use case's 16,000: the whole request must stay
    # under API_MAX_BODY_BYTES even with every character escaped, or the answer is 413.
    body: StoredText = Field(
        "", max_length=MAX_BODY_CHARS,
        description="free-form text; over 1,600 characters it goes out in several parts")
    media_urls: list[MediaUrl] = Field(
        default_factory=list, max_length=10)
    content_sid: ContentSid | None = Field(
        None, description="a Content API template (HX...): the only kind of message allowed "
        "outside the contact's 24-hour window")
    variables: dict[VariableName, VariableValue] = Field(
        default_factory=dict, max_length=MAX_VARIABLES,
        description="the template's ContentVariables")

    @model_validator(mode="after")
    def _something_to_send(self) -> SendMessageIn:
        if not self.body.strip() and not self.media_urls and self.content_sid is None:
            raise ValueError("body, media_urls or content_sid is required")
        if self.variables and self.content_sid is None:
            raise ValueError("variables need a content_sid")
        return self

    def template(self) -> Template | None:
        if self.content_sid is None:
            return None
        return Template(self.content_sid, tuple(self.variables.items()))


class MessageQueued(BaseModel):
    id: str
    conversation_id: str
    status: str
    duplicate: bool
    parts: int = Field(description="Twilio messages this message goes out as")


def make_router(
    *,
    authenticate: Any,
    list_conversations: Any,
    list_messages: Any,
    queue_outbound: Any,
    channel_for: Callable[[str], Awaitable[str | None]],
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
                 responses=error_responses(400, 401, 403, 408, 409, 413, 422, 503))
    async def send(
        payload: SendMessageIn,
        principal: Principal = authenticate,
        use_case: QueueOutboundMessage = queue_outbound,
        idempotency_key: IdempotencyKey = None,
    ) -> MessageQueued:
        bind_contextvars(owner_id=principal.owner_id)
        channel = await channel_for(principal.owner_id)
        if channel is None:
            raise UnauthorizedOwner(f"no WhatsApp number for owner {principal.owner_id}")
        queued = await use_case.execute(OutboundRequest(
            owner_id=principal.owner_id, channel=channel, to=payload.to, body=payload.body,
            media_urls=tuple(payload.media_urls), idempotency_key=idempotency_key or None,
            correlation_id=current_request_id() or None, template=payload.template(),
        ))
        bind_contextvars(conversation_id=queued.conversation_id)
        return MessageQueued(id=queued.message_id, conversation_id=queued.conversation_id,
                             status=str(queued.status), duplicate=queued.duplicate,
                             parts=queued.parts)

    return router
