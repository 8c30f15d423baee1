"""Logging set up once from settings: structlog and the standard library share one pipeline.

Every record, from structlog, from the standard library (the application layer logs that
way) or from uvicorn, goes through the same processors: context from contextvars
(request_id, correlation_id, job_id, ...), the current trace and span ids, then the
redactor, then JSON lines or a console renderer.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

from bootstrap.redaction import Redactor, masks_contacts, secret_values
from bootstrap.settings import Settings

# uvicorn installs its own handlers (with propagate off) when it configures logging.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# Record attributes that are no context: uvicorn's ANSI copy of the message, and what other
# formatters (pytest's, for one) cache on the record before ours runs.
_NOISE = ("color_message", "message", "asctime")


def add_trace_context(
    logger: object, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """trace_id/span_id of the current span, so a log line leads to its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def _drop_noise(
    logger: object, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in _NOISE:
        event_dict.pop(key, None)
    return event_dict


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler this module installs on the root logger (found again by type)."""


def _renderer(fmt: str, stream: TextIO) -> Any:
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    colors = bool(getattr(stream, "isatty", lambda: False)())
    # Plain tracebacks: rich's would print local variables, which may hold secrets.
    return structlog.dev.ConsoleRenderer(
        colors=colors, exception_formatter=structlog.dev.plain_traceback
    )


SQL_PARAMETER_LOGGERS = ("sqlalchemy.engine", "aiosqlite", "asyncpg")
# One INFO line per HTTP call (Twilio, the model): the client span already records each
# call, and on the reply path the line cost about 5% of the job's CPU.
HTTP_CLIENT_LOGGERS = ("httpx", "httpcore")
# arq's two INFO lines per job (started, finished) repeat the worker's own line per job,
# which carries the task, outcome and duration: 5% of an arq worker's CPU at 200 jobs/s.
# Its warnings and errors still show.
JOB_RUNNER_LOGGERS = ("arq.worker",)


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Idempotent: a second call replaces the formatter and level, keeping one handler.

    ``stream`` (default stderr) is kept by later calls that do not name one, so a test can
    capture everything the app logs.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
    ]
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Handler)), None)
    if handler is None:
        handler = _Handler(stream or sys.stderr)
        root.addHandler(handler)
    elif stream is not None:
        handler.setStream(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_noise],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.StackInfoRenderer(),
                structlog.processors.format_exc_info,
                Redactor(secret_values(settings), mask_contacts=masks_contacts(settings)),
                _renderer(settings.effective_log_format, handler.stream),
            ],
        )
    )
    root.setLevel(settings.log_level)
    # These print SQL with its parameters (message text, phone numbers) at DEBUG/INFO:
    # never below WARNING, whatever LOG_LEVEL says.
    for name in (*SQL_PARAMETER_LOGGERS, *HTTP_CLIENT_LOGGERS, *JOB_RUNNER_LOGGERS):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.disabled = False  # logging.config.fileConfig (Alembic's) disables them
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def reset_logging() -> None:
    """Remove what ``configure_logging`` installed (for tests)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    structlog.reset_defaults()
