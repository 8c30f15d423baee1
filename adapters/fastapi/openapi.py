"""The error answers each route documents, so the OpenAPI document is the contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorEnvelope(BaseModel):
    """Every error answer: a stable code and a human (or, for 422, itemised) detail."""

    code: str = Field(examples=["VALIDATION_ERROR"])
    detail: str | list[dict[str, Any]]


_WHY = {
    400: "Malformed input (form encoding, cursor, Content-Length)",
    401: "Missing or invalid credentials",
    403: "Invalid Twilio signature, unknown account, or an owner without a number",
    404: "Not found (or another owner's)",
    408: "The request body arrived too slowly",
    409: "Conflict",
    413: "The request body is larger than API_MAX_BODY_BYTES",
    415: "Unsupported content type",
    431: "The request headers are larger than API_MAX_HEADER_BYTES",
    422: "Validation error: a field is missing or out of its format",
    500: "Internal error (no detail)",
    503: "Storage or the job queue is unavailable; retry later",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the envelope schema.

    Any route may answer 431 (headers over the bound) and 500.
    """
    return {status: {"model": ErrorEnvelope, "description": _WHY[status]}
            for status in sorted({*statuses, 431, 500})}


def twilio_form(required: list[str], optional: list[str]) -> dict[str, Any]:
    """``openapi_extra`` for a webhook: the form Twilio posts (more fields may come)."""
    names = required + optional
    return {"requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": required,
            "properties": {name: {"type": "string"} for name in names},
        }},
    }}}


def twiml_responses() -> dict[int | str, dict[str, Any]]:
    """A webhook's answers: empty TwiML, or an envelope."""
    return {200: {"description": "Empty TwiML", "content": {"text/xml": {
        "schema": {"type": "string"}}}},
            **error_responses(400, 403, 408, 413, 415, 422, 503)}
