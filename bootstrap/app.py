"""The FastAPI application factory (``uvicorn --factory bootstrap.app:create_app``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from lagom import Container
from starlette.routing import BaseRoute, Route

from adapters.fastapi import health, webhooks
from adapters.fastapi.after_response import AfterResponseGuard
from adapters.fastapi.errors import install_error_handlers
from adapters.fastapi.limits import BodyLimitMiddleware
from adapters.fastapi.request_id import RequestIdMiddleware
from adapters.fastapi.security import TokenSettings, make_authenticator
from adapters.fastapi.tracing import TracingMiddleware
from adapters.observability.metrics import QueueGauges
from adapters.observability.use_case import TracedUseCase
from application.ports.operations import QueueStats
from bootstrap.container import Resources, build_container
from bootstrap.extras import check_extras
from bootstrap.logging import configure_logging
from bootstrap.module import Composition, CompositionError, Module, Routing
from bootstrap.schema import (
    SchemaGuardedUseCase,
    SchemaStatus,
    prepare_schema,
    schema_status_for,
)
from bootstrap.settings import Settings, load_settings
from bootstrap.telemetry import Telemetry
from bootstrap.worker import build_runner

log = logging.getLogger(__name__)

QUEUE_GAUGE_INTERVAL_SECONDS = 15.0


def token_settings(settings: Settings) -> TokenSettings:
    return TokenSettings(
        secret_key=settings.secret_key.get_secret_value(),
        algorithm=settings.algorithm,
        expire_minutes=settings.access_token_expire_minutes,
    )


def _traced(
    container: Container, tracer: Any, schema: SchemaStatus | None
) -> Callable[[type], Any]:
    """A FastAPI dependency giving the container's use case wrapped in a span (and refused
    with SCHEMA_BEHIND while the database schema is behind).

    Async on purpose: FastAPI runs a plain ``def`` dependency on a worker thread, and
    lagom's FastAPI integration (three such dependencies plus a container clone per
    request) cost the webhook several thread hops per request.
    """

    def depends(use_case: type) -> Any:
        async def provide() -> Any:
            traced = TracedUseCase(container[use_case], tracer)
            return SchemaGuardedUseCase(traced, schema) if schema else traced

        return Depends(provide)

    return depends


def _queue_gauges(container: Container, telemetry: Telemetry) -> QueueGauges:
    stats = container[QueueStats]  # every queue backend counts its jobs
    return QueueGauges(telemetry.meter, stats.depth, stats.dead_count)


class GuardedFastAPI(FastAPI):
    """FastAPI whose whole stack, the 500 handler included, sits inside one more guard."""

    def build_middleware_stack(self) -> Any:
        return AfterResponseGuard(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    *,
    embedded_worker: bool | None = None,
    modules: Sequence[Module] | None = None,
) -> FastAPI:
    """``modules``: the modules to compose when no ``container`` is given (default: the
    ``APP_MODULES`` setting); a given container's own composition is used as it is."""
    if container is not None and modules is not None:
        raise ValueError("pass modules to build_container when passing a container")
    settings = settings or load_settings()
    check_extras(settings)  # `uvicorn --factory` does not pass through the CLI's check
    configure_logging(settings)
    container = container or build_container(settings, modules=modules)
    resources = container[Resources]
    telemetry = container[Telemetry]
    gauges = _queue_gauges(container, telemetry)
    run_worker = settings.api_embedded_worker if embedded_worker is None else embedded_worker
    schema = schema_status_for(settings)
    if schema:
        resources.checks["schema"] = schema.check

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if schema:
            await prepare_schema(settings, schema)
        runner = build_runner(container, settings) if run_worker else None
        task = asyncio.create_task(runner.run(), name="embedded-worker") if runner else None
        if runner:
            log.info("embedded worker started (queue backend %s)", settings.queue_backend)
        sampler = None
        if telemetry.exporting:  # sampling costs a query: only when exported
            sampler = asyncio.create_task(gauges.run(QUEUE_GAUGE_INTERVAL_SECONDS))
        try:
            yield
        finally:
            if sampler:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            if runner and task:
                runner.stop()
                await task
            await resources.aclose()
            if schema:
                schema.close()

    app = GuardedFastAPI(
        title="whatsapp-core",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.container = container
    app.state.queue_gauges = gauges
    # Added inner first: the request id is bound before the server span starts, and the
    # body bound runs inside both, so its refusals carry the id and are counted.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.api_max_body_bytes,
                       body_timeout=settings.api_body_timeout_seconds,
                       max_header_bytes=settings.api_max_header_bytes)
    app.add_middleware(
        TracingMiddleware, tracer=telemetry.tracer,
        webhook_requests=telemetry.instruments.webhook_requests, webhook_prefix=webhooks.PREFIX,
    )
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    kernel_router = health.make_router(resources.checks)
    app.include_router(kernel_router)
    internal_key = settings.twilio_internal_api_key
    container[Routing] = Routing(
        use_case=_traced(container, telemetry.tracer, schema),
        authenticate=Depends(make_authenticator(
            token_settings(settings),
            api_key=internal_key.get_secret_value() if internal_key else None,
            api_key_owner=settings.owner_account_sid,
        )),
    )
    include_module_routers(app, container, kernel_router)
    return app


def include_module_routers(app: FastAPI, container: Container, kernel: APIRouter) -> None:
    """Every composed module's routers, refusing a method and path another route has."""
    taken: dict[tuple[str, str], str] = {}
    _claim_paths(app.router.routes, "the kernel", taken)  # /docs, /openapi.json
    _claim_paths(kernel.routes, "the kernel", taken)
    for module in container[Composition].modules:
        if module.routers is None:
            continue
        for router in module.routers(container):
            _claim_paths(router.routes, f"module {module.name!r}", taken)
            app.include_router(router)


def _claim_paths(
    routes: Iterable[BaseRoute], owner: str, taken: dict[tuple[str, str], str]
) -> None:
    for route in routes:
        if not isinstance(route, Route):  # mounts and included routers: their routes count
            continue
        for method in route.methods or ():
            key = (method, route.path)
            if key in taken:
                raise CompositionError(
                    f"{owner}: route {method} {route.path} is already served by {taken[key]}")
            taken[key] = owner
