"""Binds each port to the adapter the settings choose. Builds objects; opens nothing.

Engines, clients and queues created here connect lazily, on first use. Everything that
must be closed is registered in ``Resources`` and closed by the entry point that owns it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from lagom import Container

from adapters.console.sender import ConsoleMessageSender
from adapters.echo.responder import EchoResponder
from adapters.observability.httpx_transport import TracingTransport
from adapters.observability.job_queue import TracingJobQueue
from adapters.observability.sender import ObservedMessageSender
from adapters.system.clock import SystemClock
from adapters.system.ids import UlidGenerator
from application.policy import ConversationPolicy
from application.ports.clock import Clock
from application.ports.id_generator import IdGenerator
from application.ports.job_queue import DeadLetterStore, JobConsumer, JobQueue
from application.ports.message_sender import MessageSender
from application.ports.responder import Responder
from application.ports.unit_of_work import UnitOfWork
from bootstrap.settings import Settings
from bootstrap.telemetry import Telemetry, build_telemetry

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[Any]]
Check = Callable[[], Awaitable[None]]


@dataclass
class Resources:
    """What the entry points need besides the container: checks to run, things to close."""

    checks: dict[str, Check] = field(default_factory=dict)
    closers: list[Closer] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            try:
                await close()
            except Exception:
                log.exception("error while closing a resource")
        self.closers.clear()


def build_container(settings: Settings, telemetry: Telemetry | None = None) -> Container:
    """``telemetry``: a caller's own providers (tests); the caller then shuts them down."""
    container = Container()
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
    _bind_persistence(container, settings, resources)
    _bind_queue(container, settings, resources)
    _bind_sender(container, settings, resources)
    _bind_responder(container, settings, resources)
    return container


def _bind_persistence(container: Container, settings: Settings, resources: Resources) -> None:
    backend = settings.database_backend
    if backend == "memory":
        from adapters.in_memory.repositories import InMemoryStore
        from adapters.in_memory.unit_of_work import InMemoryUnitOfWork

        store = InMemoryStore()
        container[InMemoryStore] = store
        container[UnitOfWork] = lambda: InMemoryUnitOfWork(store)  # type: ignore[assignment]

        async def memory_ok() -> None:
            return None

        resources.checks["database"] = memory_ok
        return
    if backend == "sqlalchemy":
        from adapters.sqlalchemy.database import open_database
        from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork

        database = open_database(
            settings.database_url,
            pool_size=settings.database_pool_max_conn,
            pool_timeout=settings.database_pool_timeout_seconds,
        )
        sessions = database.sessions
        container[UnitOfWork] = lambda: SqlaUnitOfWork(sessions)  # type: ignore[assignment]
        resources.checks["database"] = database.ping
        resources.closers.append(database.dispose)
        return
    if backend == "postgres":
        from adapters.psycopg.pool import ConnectionPool
        from adapters.psycopg.unit_of_work import PsycopgUnitOfWork
        from adapters.psycopg.unit_of_work import ping as psycopg_ping

        pool = ConnectionPool(
            settings.database_url,
            min_size=settings.database_pool_min_conn,
            max_size=settings.database_pool_max_conn,
            timeout=settings.database_pool_timeout_seconds,
        )
        container[UnitOfWork] = lambda: PsycopgUnitOfWork(pool)  # type: ignore[assignment]
        resources.checks["database"] = lambda: psycopg_ping(pool)
        resources.closers.append(pool.close)
        return
    if backend == "supabase":
        from adapters.supabase import SupabaseConnection, SupabaseUnitOfWork

        key = settings.supabase_service_key or settings.supabase_key
        if not settings.supabase_url or key is None:  # the settings validator refuses this
            raise ValueError("DATABASE_BACKEND=supabase needs SUPABASE_URL and a key")
        # One client per process, created on first use; its HTTP connections closed at exit.
        connection = SupabaseConnection(
            settings.supabase_url,
            key.get_secret_value(),
            schema=settings.supabase_db_schema,
            timeout_seconds=settings.supabase_timeout_seconds,
        )
        container[SupabaseConnection] = connection
        container[UnitOfWork] = lambda: SupabaseUnitOfWork(connection)  # type: ignore[assignment]
        resources.checks["database"] = connection.ping
        resources.closers.append(connection.aclose)
        return
    raise NotImplementedError(f"DATABASE_BACKEND={backend} is not available yet")


def _bind_queue(container: Container, settings: Settings, resources: Resources) -> None:
    backend = settings.queue_backend
    queue: Any
    if backend == "memory":
        from adapters.in_memory.job_queue import InMemoryJobQueue

        queue = InMemoryJobQueue(
            max_attempts=settings.queue_max_attempts,
            visibility_timeout=settings.queue_visibility_timeout_seconds,
        )
    elif backend == "sqlite":
        from adapters.sqlite_queue.job_queue import SqliteJobQueue

        queue = SqliteJobQueue(
            settings.queue_sqlite_db_path,
            max_attempts=settings.queue_max_attempts,
            visibility_timeout=settings.queue_sqlite_lease_seconds,
            poll_interval=settings.queue_poll_interval_seconds,
        )
    elif backend == "arq":
        from adapters.arq_queue import ArqJobQueue

        if settings.queue_backend_alias:
            log.info("QUEUE_BACKEND=%s is an alias: using arq", settings.queue_backend_alias)
        queue = ArqJobQueue(settings.queue_redis_url, max_attempts=settings.queue_max_attempts)
        container[ArqJobQueue] = queue  # the arq worker dead-letters through the adapter
    elif backend == "sqs":
        from adapters.sqs import SqsJobQueue

        if not settings.queue_sqs_queue_url:
            raise ValueError("QUEUE_BACKEND=sqs needs QUEUE_SQS_QUEUE_URL")
        secret = settings.queue_aws_secret_access_key
        queue = SqsJobQueue(
            settings.queue_sqs_queue_url,
            dead_letter_queue_url=settings.queue_sqs_dlq_url,
            region=settings.queue_aws_region,
            endpoint_url=settings.queue_sqs_endpoint_url,
            access_key_id=settings.queue_aws_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            max_attempts=settings.queue_max_attempts,
            visibility_timeout=settings.queue_visibility_timeout_seconds,
        )
    else:
        raise NotImplementedError(f"QUEUE_BACKEND={backend} is not available yet")
    # One instance serves every role, so an in-process enqueue wakes the embedded worker.
    # Only the producer side is traced; consumer and DLQ roles keep the bare instance.
    container[JobQueue] = TracingJobQueue(queue, container[Telemetry].tracer)
    if backend != "arq":  # arq's own Worker consumes; it is no JobConsumer
        container[JobConsumer] = queue
    container[DeadLetterStore] = queue
    resources.checks["queue"] = queue.ping
    resources.closers.append(queue.close)


def _bind_sender(container: Container, settings: Settings, resources: Resources) -> None:
    telemetry = container[Telemetry]
    if not settings.uses_twilio_sender:
        container[MessageSender] = ObservedMessageSender(
            ConsoleMessageSender(), telemetry.tracer, telemetry.instruments, "console")
        return
    from adapters.twilio.sender import TwilioMessageSender

    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.twilio_timeout_seconds, connect=5.0),
        # Client spans and traceparent on every call to Twilio.
        transport=TracingTransport(
            httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=20)), telemetry.tracer
        ),
    )
    resources.closers.append(client.aclose)
    sender = TwilioMessageSender(
        account_sid=settings.owner_account_sid,
        auth_token=settings.owner_auth_token,
        client=client,
        base_url=settings.twilio_api_base_url,
        status_callback_url=settings.twilio_status_callback_url,
    )
    container[MessageSender] = ObservedMessageSender(
        sender, telemetry.tracer, telemetry.instruments, "twilio")


def _bind_responder(container: Container, settings: Settings, resources: Resources) -> None:
    if settings.llm_provider == "echo":
        container[Responder] = EchoResponder()
        return
    from adapters.openai import OpenAICompatibleResponder

    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.llm_timeout_seconds, connect=5.0),
        # Client spans and traceparent on every call to the model.
        transport=TracingTransport(httpx.AsyncHTTPTransport(), container[Telemetry].tracer),
    )
    resources.closers.append(client.aclose)
    key = settings.llm_api_key
    container[Responder] = OpenAICompatibleResponder(
        client=client,
        base_url=settings.effective_llm_base_url,
        model=settings.llm_model_name or "",
        api_key=key.get_secret_value() if key else None,
    )
