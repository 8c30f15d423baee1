"""Binds each port to the adapter the settings choose. Builds objects; opens nothing.

Engines, clients and queues created here connect lazily, on first use. Everything that
must be closed is registered in ``Resources`` and closed by the entry point that owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import httpx
from lagom import Container

from adapters.console.sender import ConsoleMessageSender
from adapters.echo.responder import EchoResponder
from adapters.observability.conversation_metrics import OtelConversationMetrics
from adapters.observability.httpx_transport import TracingTransport
from adapters.observability.sender import ObservedMessageSender
from adapters.system.clock import SystemClock
from adapters.system.ids import UlidGenerator
from adapters.twilio.long_text import GraphemeTextSplitter
from application.channel_policy import ChannelPolicy
from application.policy import AssistantPolicy, ConversationPolicy, HandoffPolicy, MediaPolicy
from application.ports.assistant_profiles import AssistantProfiles, SameForEveryOwner
from application.ports.blob_store import BlobStore
from application.ports.clock import Clock
from application.ports.conversation_metrics import ConversationMetrics
from application.ports.id_generator import IdGenerator
from application.ports.media_fetcher import MediaFetcher
from application.ports.message_sender import MessageSender
from application.ports.owner_directory import (
    ChannelOwner,
    OwnerDirectory,
    SingleOwnerDirectory,
    bare_number,
)
from application.ports.reply_allowance import ReplyAllowance, Unlimited
from application.ports.responder import Responder
from application.ports.text_splitter import TextSplitter
from application.ports.transcriber import NoTranscriber, Transcriber
from application.use_cases.close_conversations import LifecyclePolicy
from bootstrap.channel_owners import OwnerRoutedMediaFetcher, OwnerRoutedSender
from bootstrap.module import Composition, Module
from bootstrap.modules import compose_for
from bootstrap.persistence import bind_persistence
from bootstrap.queues import bind_queue
from bootstrap.resources import Resources
from bootstrap.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, Settings
from bootstrap.sweep import bind_sweep
from bootstrap.telemetry import Telemetry, build_telemetry

__all__ = ["Resources", "build_container"]

# Connections kept alive to the model (a call takes seconds, so many are in flight at
# once; past this many, calls wait for a free one) and, by default, to Twilio. The pool is
# aiohttp's (adapters/http_pool): httpcore's cost grew with the calls in flight.
LLM_CONNECTIONS = 200
TWILIO_CONNECTIONS = 100


def build_container(
    settings: Settings,
    telemetry: Telemetry | None = None,
    modules: Sequence[Module] | None = None,
) -> Container:
    """``telemetry``: a caller's own providers (tests); the caller then shuts them down.
    ``modules``: the modules to compose (default: those ``APP_MODULES`` names).

    Bad modules, module settings or an unknown module variable fail here, before anything
    is built (``CompositionError``, ``SettingsError``)."""
    container = Container()
    composed = compose_for(settings, modules)
    composition = composed.composition
    container[Composition] = composition
    resources = Resources()
    container[Settings] = settings
    container[Resources] = resources
    if telemetry is None:
        telemetry = build_telemetry(settings)
        resources.closers.append(telemetry.aclose)
    container[Telemetry] = telemetry
    container[Clock] = SystemClock()
    container[IdGenerator] = UlidGenerator()
    container[ConversationPolicy] = ConversationPolicy(
        idle_timeout=timedelta(minutes=settings.conversation_idle_timeout_minutes),
        expiration=timedelta(minutes=settings.conversation_expiration_minutes),
        closure_keywords=frozenset(k.casefold() for k in settings.conversation_closure_keywords),
    )
    container[ChannelPolicy] = ChannelPolicy(
        window=timedelta(hours=settings.twilio_window_hours),
        fallback_content_sid=settings.twilio_fallback_content_sid,
    )
    container[TextSplitter] = GraphemeTextSplitter()
    container[AssistantPolicy] = AssistantPolicy(
        fallback_message=settings.assistant_fallback_message,
        history_budget_chars=settings.llm_history_budget_chars,
    )
    handoff_minutes = settings.assistant_handoff_timeout_minutes
    container[HandoffPolicy] = HandoffPolicy(
        keywords=frozenset(k.casefold() for k in settings.assistant_handoff_keywords),
        timeout=timedelta(minutes=handoff_minutes) if handoff_minutes else None,
    )
    container[MediaPolicy] = MediaPolicy(
        transcribe_audio=settings.llm_transcription_enabled,
        vision=settings.llm_vision, vision_possible=settings.llm_provider == "openai")
    container[LifecyclePolicy] = LifecyclePolicy(
        closing_message=settings.assistant_closing_message)
    container[ConversationMetrics] = OtelConversationMetrics(telemetry.meter)
    bind_persistence(container, settings, resources)
    bind_queue(container, settings, resources)
    bind_sweep(container, settings)
    _bind_sender(container, settings, resources)
    _bind_responder(container, settings, resources)
    _bind_media(container, settings, resources)
    for module in composition.modules:
        # A module's settings are bound by their model's type (container[BillingSettings]).
        own = composed.settings.get(module.name)
        if own is not None:
            container[type(own)] = own
        if module.bind is not None:
            module.bind(container, own)
    _bind_unless_a_module_did(container, settings)
    return container


def _bind_unless_a_module_did(container: Container, settings: Settings) -> None:
    """Kernel ports a module may provide instead (Lagom refuses a second definition, so
    the kernel's comes after the modules' binds, only where none bound one)."""
    defined = container.defined_types
    if AssistantProfiles not in defined:
        container[AssistantProfiles] = SameForEveryOwner()
    if ReplyAllowance not in defined:
        container[ReplyAllowance] = Unlimited()
    if OwnerDirectory not in defined:
        # One owner from the TWILIO_* settings; an identity module binds stored ones.
        container[OwnerDirectory] = SingleOwnerDirectory(default_owner(settings))


def default_owner(settings: Settings) -> ChannelOwner:
    """The owner the TWILIO_* settings describe (the embedded development one when unset).

    Its id is its account SID: rows stored before owners existed carry it."""
    return ChannelOwner(
        owner_id=settings.owner_account_sid,
        account_sid=settings.owner_account_sid,
        auth_token=settings.owner_auth_token,
        numbers=(bare_number(settings.owner_phone_number),),
    )


def _twilio_client(settings: Settings, telemetry: Telemetry,
                   resources: Resources, max_connections: int | None = None) -> httpx.AsyncClient:
    # Imported here: aiohttp adds ~0.1 s to the start of a process that never calls out.
    from adapters.http_pool.transport import AiohttpPool, api_client

    transport = AiohttpPool(max_connections=max_connections or TWILIO_CONNECTIONS)
    client = api_client(
        # Client spans and traceparent on every call to Twilio.
        TracingTransport(transport, telemetry.tracer),
        httpx.Timeout(settings.twilio_timeout_seconds, connect=5.0),
    )
    resources.closers.append(client.aclose)
    return client


def _bind_sender(container: Container, settings: Settings, resources: Resources) -> None:
    telemetry = container[Telemetry]
    console = ObservedMessageSender(
        ConsoleMessageSender(), telemetry.tracer, telemetry.instruments, "console")
    from adapters.twilio.sender import TwilioMessageSender

    # One connection pool for every owner: the credentials travel per request.
    client = _twilio_client(settings, telemetry, resources, max_connections=20)

    def twilio(owner: ChannelOwner) -> MessageSender:
        sender = TwilioMessageSender(
            account_sid=owner.account_sid,
            auth_token=owner.auth_token,
            client=client,
            base_url=settings.twilio_api_base_url,
            status_callback_url=settings.twilio_status_callback_url,
        )
        return ObservedMessageSender(sender, telemetry.tracer, telemetry.instruments, "twilio")

    # Without both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN the default owner's replies
    # are logged by the console sender, as before owners were stored.
    console_accounts = frozenset() if settings.uses_twilio_sender else frozenset(
        {(settings.owner_account_sid, settings.owner_auth_token)})
    container[MessageSender] = OwnerRoutedSender(
        lambda: container[OwnerDirectory], twilio, console,
        console_accounts | {(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN)})


def _bind_media(container: Container, settings: Settings, resources: Resources) -> None:
    from adapters.twilio.media import TwilioMediaFetcher

    client = _twilio_client(settings, container[Telemetry], resources)

    def fetcher(owner: ChannelOwner) -> MediaFetcher:
        return TwilioMediaFetcher(
            account_sid=owner.account_sid,
            auth_token=owner.auth_token,
            client=client,
            max_bytes=settings.twilio_media_max_bytes,
            allowed_types=settings.twilio_media_content_types,
            base_url=settings.twilio_api_base_url,
        )

    container[MediaFetcher] = OwnerRoutedMediaFetcher(lambda: container[OwnerDirectory], fetcher)
    if settings.twilio_media_store == "s3":
        from adapters.s3_blobs import S3BlobStore

        secret = settings.twilio_media_s3_secret_access_key
        store = S3BlobStore(
            bucket=settings.twilio_media_s3_bucket or "",
            region=settings.twilio_media_s3_region,
            endpoint_url=settings.twilio_media_s3_endpoint_url,
            access_key_id=settings.twilio_media_s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
        )
        resources.closers.append(store.aclose)
        container[BlobStore] = store
    else:
        from adapters.local_blobs import LocalDirectoryBlobStore

        container[BlobStore] = LocalDirectoryBlobStore(settings.twilio_media_dir)


def _bind_responder(container: Container, settings: Settings, resources: Resources) -> None:
    if settings.llm_provider == "echo":
        container[Transcriber] = NoTranscriber()
        container[Responder] = EchoResponder()
        return
    from adapters.http_pool.transport import AiohttpPool, api_client
    from adapters.openai.responder import DEFAULT_SYSTEM_PROMPT, OpenAICompatibleResponder

    client = api_client(
        # Client spans and traceparent on every call to the model.
        TracingTransport(AiohttpPool(max_connections=LLM_CONNECTIONS),
                         container[Telemetry].tracer),
        httpx.Timeout(settings.llm_timeout_seconds, connect=5.0),
    )
    resources.closers.append(client.aclose)
    key = settings.llm_api_key
    if settings.llm_transcription_enabled:
        from adapters.openai.transcriber import OpenAICompatibleTranscriber

        container[Transcriber] = OpenAICompatibleTranscriber(
            client=client, base_url=settings.effective_llm_base_url,
            model=settings.llm_transcription_model,
            api_key=key.get_secret_value() if key else None)
    else:
        container[Transcriber] = NoTranscriber()
    container[Responder] = OpenAICompatibleResponder(
        client=client,
        base_url=settings.effective_llm_base_url,
        model=settings.llm_model_name or "",
        api_key=key.get_secret_value() if key else None,
        system_prompt=settings.llm_system_prompt or DEFAULT_SYSTEM_PROMPT,
    )
