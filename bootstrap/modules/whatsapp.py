"""The WhatsApp conversation flow, declared as a module like any other."""

from __future__ import annotations

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
from bootstrap.module import Module

MODULE = Module(
    name="whatsapp",
    tasks=(
        TaskSpec(GENERATE_REPLY, GenerateReplyPayload, GenerateReply),
        TaskSpec(SEND_MESSAGE, SendMessagePayload, SendOutboundMessage),
        # Inbound media is fetched before the reply is generated (the reply waits for it).
        TaskSpec(DOWNLOAD_MEDIA, DownloadMediaPayload, DownloadInboundMedia),
        # A status callback that beat its send's MessageSid into the database.
        TaskSpec(APPLY_STATUS, ApplyStatusPayload, ApplyEarlyStatus),
    ),
)
