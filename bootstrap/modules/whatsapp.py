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
from application.use_cases.stalled_messages import RepliesNeverGenerated, RepliesNeverSent
from bootstrap.module import Module

MODULE = Module(
    name="whatsapp",
    tasks=(
        # ``stalled``: how the kernel's sweep finds each task's lost jobs.
        TaskSpec(GENERATE_REPLY, GenerateReplyPayload, GenerateReply,
                 stalled=RepliesNeverGenerated),
        TaskSpec(SEND_MESSAGE, SendMessagePayload, SendOutboundMessage,
                 stalled=RepliesNeverSent),
    ),
)
