"""The WhatsApp conversation flow, declared as a module like any other."""

from __future__ import annotations

from application.conversation_entities import CONVERSATIONS, MESSAGES
from application.tasks import (
    APPLY_STATUS,
    DOWNLOAD_MEDIA,
    GENERATE_REPLY,
    SEND_MESSAGE,
    ApplyStatusPayload,
    DownloadMediaPayload,
    GenerateReplyPayload,
    SendMessagePayload,
    TaskSpec,
)
from application.use_cases.download_media import DownloadInboundMedia
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.record_delivery_status import ApplyEarlyStatus
from application.use_cases.send_outbound import SendOutboundMessage
from application.use_cases.stalled_messages import RepliesNeverGenerated, RepliesNeverSent
from bootstrap.module import Module
from bootstrap.persistence import with_repositories


def _extension(name: str) -> dict[str, str]:
    # The flow's own queries (get_open, awaiting_reply...), one class per backend.
    return {
        "memory": f"adapters.in_memory.conversation_repositories:InMemory{name}Repository",
        "sqlalchemy": f"adapters.sqlalchemy.repositories:Sqla{name}Repository",
        "postgres": f"adapters.psycopg.repositories:Psycopg{name}Repository",
        "supabase": f"adapters.supabase.repositories:Supabase{name}Repository",
    }


MODULE = Module(
    name="whatsapp",
    entities=(
        with_repositories(CONVERSATIONS, **_extension("Conversation")),
        with_repositories(MESSAGES, **_extension("Message")),
    ),
    tasks=(
        # ``stalled``: how the kernel's sweep finds each task's lost jobs.
        TaskSpec(GENERATE_REPLY, GenerateReplyPayload, GenerateReply,
                 stalled=RepliesNeverGenerated),
        TaskSpec(SEND_MESSAGE, SendMessagePayload, SendOutboundMessage,
                 stalled=RepliesNeverSent),
        # Inbound media is fetched before the reply is generated (the reply waits for it).
        TaskSpec(DOWNLOAD_MEDIA, DownloadMediaPayload, DownloadInboundMedia),
        # A status callback that beat its send's MessageSid into the database.
        TaskSpec(APPLY_STATUS, ApplyStatusPayload, ApplyEarlyStatus),
    ),
)
