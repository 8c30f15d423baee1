"""The WhatsApp conversation flow, declared as a module like any other."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from lagom import Container

from adapters.fastapi import handoff_api, internal_api, webhooks
from adapters.fastapi.signature import TrustedProxies
from application.conversation_entities import CONVERSATIONS, MESSAGES
from application.ports.owner_directory import OwnerDirectory
from application.tasks import (
    APPLY_STATUS,
    DOWNLOAD_MEDIA,
    GENERATE_REPLY,
    SEND_MESSAGE,
    TRANSCRIBE_AUDIO,
    ApplyStatusPayload,
    DownloadMediaPayload,
    GenerateReplyPayload,
    PeriodicSpec,
    Resolver,
    SendMessagePayload,
    TaskSpec,
    TranscribeAudioPayload,
)
from application.use_cases.close_conversations import CloseStaleConversations
from application.use_cases.download_media import DownloadInboundMedia
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.handoff import HandOffConversation, ReleaseConversation
from application.use_cases.queue_outbound import QueueOutboundMessage
from application.use_cases.read_conversations import ListConversationMessages, ListConversations
from application.use_cases.receive_inbound import ReceiveInboundMessage
from application.use_cases.record_delivery_status import ApplyEarlyStatus, RecordDeliveryStatus
from application.use_cases.send_outbound import SendOutboundMessage
from application.use_cases.stalled_messages import RepliesNeverGenerated, RepliesNeverSent
from application.use_cases.transcribe_audio import TranscribeAudio
from bootstrap.module import Module, Routing
from bootstrap.persistence import with_repositories
from bootstrap.settings import Settings


def _extension(name: str) -> dict[str, str]:
    # The flow's own queries (get_open, awaiting_reply...), one class per backend.
    return {
        "memory": f"adapters.in_memory.conversation_repositories:InMemory{name}Repository",
        "sqlalchemy": f"adapters.sqlalchemy.repositories:Sqla{name}Repository",
        "postgres": f"adapters.psycopg.repositories:Psycopg{name}Repository",
        "supabase": f"adapters.supabase.repositories:Supabase{name}Repository",
    }


def routers(container: Container) -> Sequence[APIRouter]:
    """Twilio's webhooks and the internal API."""
    settings = container[Settings]
    routing = container[Routing]
    use_case = routing.use_case
    # The kernel's single owner, or the one an identity module bound (resolved once the
    # container is complete: modules bind after the kernel).
    directory = container[OwnerDirectory]

    async def channel_for(owner_id: str) -> str | None:
        owner = await directory.by_id(owner_id)
        return owner.sending_number if owner is not None and owner.enabled else None

    return [
        webhooks.make_router(
            receive_inbound=use_case(ReceiveInboundMessage),
            record_status=use_case(RecordDeliveryStatus),
            owners=directory.resolve,
            public_base_url=settings.api_public_base_url,
            validate_signature=settings.twilio_validate_signature,
            trusted_proxies=TrustedProxies(settings.api_trusted_proxies),
            max_form_fields=settings.api_max_form_fields,
        ),
        internal_api.make_router(
            authenticate=routing.authenticate,
            list_conversations=use_case(ListConversations),
            list_messages=use_case(ListConversationMessages),
            queue_outbound=use_case(QueueOutboundMessage),
            channel_for=channel_for,
        ),
        handoff_api.make_router(
            authenticate=routing.authenticate,
            hand_off=use_case(HandOffConversation),
            release=use_case(ReleaseConversation),
        ),
    ]


def _lifecycle_interval(resolve: Resolver) -> float:
    return resolve(Settings).assistant_lifecycle_interval_seconds


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
        # A voice note is transcribed between its download and its reply.
        TaskSpec(TRANSCRIBE_AUDIO, TranscribeAudioPayload, TranscribeAudio),
    ),
    # Closes idle and expired conversations, with the owner's closing message.
    periodic=(PeriodicSpec("close_conversations", _lifecycle_interval,
                           CloseStaleConversations),),
    routers=routers,
)
