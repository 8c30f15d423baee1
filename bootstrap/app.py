"""The FastAPI application factory (``uvicorn --factory bootstrap.app:create_app``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from lagom import Container
from lagom.integrations.fast_api import FastApiIntegration

from adapters.fastapi import health, webhooks
from adapters.fastapi.errors import install_error_handlers
from adapters.fastapi.request_id import RequestIdMiddleware
from adapters.fastapi.signature import OwnerLookup, TwilioOwner
from application.use_cases.receive_inbound import ReceiveInboundMessage
from application.use_cases.record_delivery_status import RecordDeliveryStatus
from bootstrap.container import Resources, build_container
from bootstrap.logging import configure_logging
from bootstrap.settings import Settings, load_settings
from bootstrap.worker import build_runner

log = logging.getLogger(__name__)


def owner_lookup(settings: Settings) -> OwnerLookup:
    """The default owner from settings. A webhook without AccountSid is taken as theirs."""
    owner = TwilioOwner(
        owner_id=settings.owner_account_sid,
        account_sid=settings.owner_account_sid,
        auth_token=settings.owner_auth_token,
    )

    def lookup(account_sid: str | None) -> TwilioOwner | None:
        return owner if account_sid in (None, owner.account_sid) else None

    return lookup


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    *,
    embedded_worker: bool | None = None,
) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings)
    container = container or build_container(settings)
    resources = container[Resources]
    run_worker = settings.api_embedded_worker if embedded_worker is None else embedded_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = build_runner(container, settings) if run_worker else None
        task = asyncio.create_task(runner.run(), name="embedded-worker") if runner else None
        if runner:
            log.info("embedded worker started (queue backend %s)", settings.queue_backend)
        try:
            yield
        finally:
            if runner and task:
                runner.stop()
                await task
            await resources.aclose()

    app = FastAPI(
        title="whatsapp-core",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.container = container
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    deps = FastApiIntegration(container)
    app.include_router(health.make_router(resources.checks))
    app.include_router(
        webhooks.make_router(
            receive_inbound=deps.depends(ReceiveInboundMessage),
            record_status=deps.depends(RecordDeliveryStatus),
            owners=owner_lookup(settings),
            public_base_url=settings.api_public_base_url,
            validate_signature=settings.twilio_validate_signature,
        )
    )
    return app
