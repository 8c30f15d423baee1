"""The WhatsApp conversation flow, declared as a module like any other."""

from __future__ import annotations

from application.tasks import (
    GENERATE_REPLY,
    SEND_MESSAGE,
    GenerateReplyPayload,
    SendMessagePayload,
    TaskSpec,
)
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.send_outbound import SendOutboundMessage
from bootstrap.module import Module

MODULE = Module(
    name="whatsapp",
    tasks=(
        TaskSpec(GENERATE_REPLY, GenerateReplyPayload, GenerateReply),
        TaskSpec(SEND_MESSAGE, SendMessagePayload, SendOutboundMessage),
    ),
)
