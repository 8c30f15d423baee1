"""The internal API's handoff routes: a person takes a conversation, and gives it back.

While an agent holds it the bot generates and sends nothing there; agents write through
``POST /api/v1/messages``. Scoped to the caller's owner like every internal route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from structlog.contextvars import bind_contextvars

from adapters.fastapi.internal_api import PREFIX, ConversationId, ConversationOut
from adapters.fastapi.openapi import error_responses
from adapters.fastapi.security import Principal
from application.use_cases.handoff import (
    HandOffConversation,
    HandoffRequest,
    ReleaseConversation,
    ReleaseRequest,
)

MAX_HOLD_MINUTES = 7 * 24 * 60


class HandoffIn(BaseModel):
    agent_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$",
                          description="who takes the conversation")
    minutes: int | None = Field(None, ge=1, le=MAX_HOLD_MINUTES,
                                description="default: ASSISTANT_HANDOFF_TIMEOUT_MINUTES")


def make_router(*, authenticate: Any, hand_off: Any, release: Any) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["internal"])

    @router.post("/conversations/{conversation_id}/handoff", response_model=ConversationOut,
                 responses=error_responses(400, 401, 404, 409, 422, 503))
    async def handoff(
        conversation_id: ConversationId,
        payload: HandoffIn,
        principal: Principal = authenticate,
        use_case: HandOffConversation = hand_off,
    ) -> ConversationOut:
        bind_contextvars(owner_id=principal.owner_id, conversation_id=conversation_id)
        held = await use_case.execute(HandoffRequest(
            principal.owner_id, conversation_id, payload.agent_id, payload.minutes))
        return ConversationOut.of(held)

    @router.post("/conversations/{conversation_id}/release", response_model=ConversationOut,
                 responses=error_responses(400, 401, 404, 409, 422, 503))
    async def release_route(
        conversation_id: ConversationId,
        principal: Principal = authenticate,
        use_case: ReleaseConversation = release,
    ) -> ConversationOut:
        bind_contextvars(owner_id=principal.owner_id, conversation_id=conversation_id)
        released = await use_case.execute(ReleaseRequest(principal.owner_id, conversation_id))
        return ConversationOut.of(released)

    return router
