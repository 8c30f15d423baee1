"""One error envelope for every failure: ``{"code": ..., "detail": ...}`` plus X-Request-ID."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from adapters.fastapi.request_id import REQUEST_ID_HEADER, current_request_id
from application.errors import (
    ApplicationError,
    ConcurrencyError,
    ContactBlocked,
    InvalidQuery,
    NotFound,
    PayloadTooLarge,
    QueueUnavailable,
    SchemaBehind,
    StorageUnavailable,
    UnauthorizedOwner,
    WindowClosed,
)
from domain.errors import (
    DomainError,
    DuplicateMessage,
    InvalidIdentifier,
    InvalidStatusTransition,
    InvalidText,
    InvalidWhatsAppAddress,
)

log = logging.getLogger(__name__)

# The one table from error type to HTTP status. Unlisted domain errors are 422,
# unlisted application errors 500.
STATUS_BY_ERROR: dict[type[Exception], int] = {
    InvalidWhatsAppAddress: 422,
    InvalidIdentifier: 422,
    InvalidText: 422,
    InvalidStatusTransition: 409,
    DuplicateMessage: 409,
    NotFound: 404,
    ConcurrencyError: 409,
    InvalidQuery: 400,
    PayloadTooLarge: 413,
    UnauthorizedOwner: 403,
    WindowClosed: 409,
    ContactBlocked: 409,
    StorageUnavailable: 503,
    QueueUnavailable: 503,
}

# Messages of these errors may describe infrastructure; callers get a fixed text.
_OPAQUE: dict[type[Exception], str] = {
    StorageUnavailable: "storage is unavailable, try again later",
    QueueUnavailable: "the job queue is unavailable, try again later",
    SchemaBehind: "the database schema is behind this version: run `wta migrate`",
}


def status_for(exc: Exception) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 422 if isinstance(exc, DomainError) else 500


def envelope(
    request: Request, status: int, code: str, detail: Any, headers: dict[str, str] | None = None
) -> JSONResponse:
    # The 500 handler runs outside every middleware, so the id is read from the scope.
    request_id = getattr(request.state, "request_id", None) or current_request_id()
    all_headers = {REQUEST_ID_HEADER: request_id} | (headers or {})
    return JSONResponse({"code": code, "detail": detail}, status_code=status, headers=all_headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return envelope(request, exc.status_code, "HTTP_ERROR", exc.detail, dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Drop the rejected input: it may carry a secret.
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
              for e in exc.errors()]
    return envelope(request, 422, "VALIDATION_ERROR", errors)


async def _known_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    code = getattr(exc, "code", "INTERNAL_ERROR")
    detail = _OPAQUE.get(type(exc)) or str(exc)
    if status >= 500:
        log.error("request failed with %s: %s", code, exc)
        detail = _OPAQUE.get(type(exc), "internal error")
    return envelope(request, status, code, detail)


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    # The client left mid-body, or the body bound ended the request (its answer was sent).
    log.info("request body not completed: the client disconnected or was refused")
    return envelope(request, 400, "CLIENT_DISCONNECTED", "the request body was not completed")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return envelope(request, 500, "INTERNAL_ERROR", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(DomainError, _known_error)
    app.add_exception_handler(ApplicationError, _known_error)
    app.add_exception_handler(Exception, _unexpected)
