"""One logging pipeline: JSON lines, context from contextvars, trace ids, and redaction."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import structlog

from adapters.fastapi.security import TokenSettings, create_access_token
from bootstrap.redaction import MASK, Redactor
from tests.conftest import MakeSettings
from tests.observability.conftest import LogCapture, Recorded

AUTH_TOKEN = "f00dbabe" * 4  # a Twilio auth token is 32 hex characters
API_KEY = "internal-api-key-5f2e9c"
LLM_KEY = "sk-live-llm-key-77a1b2c3"
SECRET_KEY = "jwt-signing-secret-4d5e6f"
DB_PASSWORD = "db-pa55word-x9"
REDIS_PASSWORD = "redis-pa55-y8"
UNKNOWN_PASSWORD = "not-in-settings-pw"
UNKNOWN_BEARER = "opaque-bearer-token-123456"
UNKNOWN_APIKEY = "query-api-key-654321"
BASIC = "QUM5OTk6c2VjcmV0LXZhbHVl"  # base64 of AC999:secret-value


def secret_settings(make_settings: MakeSettings, log_format: str = "json"):  # type: ignore[no-untyped-def]
    return make_settings(
        twilio_account_sid="AC" + "1" * 32, twilio_auth_token=AUTH_TOKEN,
        twilio_internal_api_key=API_KEY, llm_api_key=LLM_KEY, secret_key=SECRET_KEY,
        database_url=f"postgresql://app:{DB_PASSWORD}@db.internal:5432/app",
        queue_redis_url=f"redis://:{REDIS_PASSWORD}@cache:6379/0",
        log_format=log_format, log_level="DEBUG",
    )


def test_lines_are_json_with_level_logger_time_and_context(
    make_settings: MakeSettings, logs: LogCapture
) -> None:
    logs.configure(make_settings(log_format="json"))
    with structlog.contextvars.bound_contextvars(request_id="r-1", correlation_id="SM1"):
        logging.getLogger("application.x").info("stored %s", "m-1")
        structlog.get_logger("adapters.y").warning("queued", job_id="j-1")
    first, second = logs.lines()
    assert first["event"] == "stored m-1" and first["level"] == "info"
    assert first["logger"] == "application.x" and first["timestamp"]
    assert (first["request_id"], first["correlation_id"]) == ("r-1", "SM1")
    assert second["event"] == "queued" and second["job_id"] == "j-1"
    assert second["correlation_id"] == "SM1" and second["level"] == "warning"


def test_lines_carry_the_current_trace_and_span(
    make_settings: MakeSettings, logs: LogCapture, recorded: Recorded
) -> None:
    logs.configure(make_settings(log_format="json"))
    with recorded.telemetry.tracer.start_as_current_span("work") as span:
        logging.getLogger("x").info("inside")
    logging.getLogger("x").info("outside")
    inside, outside = logs.lines()
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "trace_id" not in outside


def test_console_format_is_not_json_and_configuring_twice_keeps_one_handler(
    make_settings: MakeSettings, logs: LogCapture
) -> None:
    logs.configure(make_settings(log_format="console"))
    logs.configure(make_settings(log_format="console"))
    logging.getLogger("x").info("hello console")
    assert logs.text.count("hello console") == 1
    assert not logs.text.lstrip().startswith("{")


def _emit_every_secret(logger_name: str) -> None:
    signing = TokenSettings(secret_key="another-signing-key-of-32-bytes!!")
    jwt = create_access_token("owner-1", signing, expires_in=timedelta(minutes=5))
    texts = [
        f"twilio token {AUTH_TOKEN}",
        f"headers {{'authorization': 'Bearer {UNKNOWN_BEARER}', 'x-api-key': '{API_KEY}'}}",
        f"Authorization: Basic {BASIC}",
        f"X-API-Key: {UNKNOWN_APIKEY}x",
        f"GET /api/v1/conversations?apikey={UNKNOWN_APIKEY}&limit=5",
        f"token {jwt}",
        f"connecting to postgresql://app:{UNKNOWN_PASSWORD}@other-host/db",
        f"redis at redis://:{REDIS_PASSWORD}@cache:6379/0",
        f"llm key {LLM_KEY} and signing key {SECRET_KEY} and db pw {DB_PASSWORD}",
        f"password={UNKNOWN_PASSWORD}",
    ]
    log = logging.getLogger(logger_name)
    log.setLevel(logging.DEBUG)  # uvicorn may have left its loggers at another level
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        for text in texts:
            log.log(level, text)
            log.log(level, "%s", text)  # through %-args too
    try:
        raise RuntimeError(f"failed with {LLM_KEY} at https://u:{UNKNOWN_PASSWORD}@h/")
    except RuntimeError:
        log.exception("boom")
    slog = structlog.get_logger(logger_name)
    slog.info("structured", authorization=f"Bearer {UNKNOWN_BEARER}", api_key=UNKNOWN_APIKEY,
              nested={"password": UNKNOWN_PASSWORD, "url": f"redis://:{REDIS_PASSWORD}@c/0"},
              token=jwt)
    slog.error("with extras", extra_text=f"apikey={UNKNOWN_APIKEY}")


SECRETS = [AUTH_TOKEN, API_KEY, LLM_KEY, SECRET_KEY, DB_PASSWORD, REDIS_PASSWORD,
           UNKNOWN_PASSWORD, UNKNOWN_BEARER, UNKNOWN_APIKEY, BASIC, "eyJ"]


@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.parametrize("logger_name", ["application.use_cases", "uvicorn.error",
                                         "uvicorn.access", "wta.access"])
def test_no_secret_reaches_the_output_at_any_level(
    make_settings: MakeSettings, logs: LogCapture, log_format: str, logger_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs.configure(secret_settings(make_settings, log_format))
    monkeypatch.setattr(logging.getLogger(logger_name), "level", logging.NOTSET)
    _emit_every_secret(logger_name)
    output = logs.text
    assert output.count(MASK) > 100, output  # every line was written, masked
    assert "Traceback" in output and "RuntimeError" in output
    leaked = [secret for secret in SECRETS if secret in output]
    assert leaked == [], output


def test_uvicorn_loggers_go_through_the_same_pipeline(
    make_settings: MakeSettings, logs: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    uvicorn_logger = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(uvicorn_logger, "level", uvicorn_logger.level)  # restored afterwards
    # As uvicorn's own logging config leaves it (the level is uvicorn's --log-level).
    uvicorn_logger.propagate = False
    uvicorn_logger.addHandler(logging.StreamHandler())
    uvicorn_logger.setLevel(logging.INFO)
    logs.configure(make_settings(log_format="json"))
    uvicorn_logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                        f"/x?api_key={UNKNOWN_APIKEY}", "1.1", 200)
    [line] = logs.lines()
    assert line["logger"] == "uvicorn.access"
    assert UNKNOWN_APIKEY not in line["event"] and MASK in line["event"]
    assert uvicorn_logger.handlers == []


@pytest.mark.parametrize(("logger", "per_request_lines"), [
    ("httpx", [('httpx', 'HTTP Request: POST https://api.example/x "201 Created"'),
               ("httpcore.http11", "receive_response_headers.complete")]),
    ("arq.worker", [("arq.worker", "  0.01s → 1a2b:generate_reply()"),
                    ("arq.worker", "  0.02s ← 1a2b:generate_reply ●")]),
], ids=["http-client", "arq"])
def test_per_call_library_lines_stay_below_info_but_their_warnings_pass(
    make_settings: MakeSettings, logs: LogCapture, logger: str,
    per_request_lines: list[tuple[str, str]]
) -> None:
    logs.configure(make_settings(log_format="json", log_level="INFO"))
    for name, text in per_request_lines:
        logging.getLogger(name).info(text)
    logging.getLogger(logger).warning("something to look at")
    [line] = logs.lines()
    assert (line["logger"], line["event"]) == (logger, "something to look at")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("request 0123456789abcdef0123456789abcdef done", "0123456789abcdef0123456789abcdef"),
        ("MessageSid SM0123456789abcdef0123456789abcdef", "SM0123456789abcdef0123456789abcdef"),
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", "api.twilio.com"),
        ("the tokenizer: fine", "tokenizer: fine"),
    ],
)
def test_redaction_keeps_ids_and_ordinary_text(text: str, kept: str) -> None:
    assert kept in Redactor().scrub(text)


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: BEARER abc.def-ghi", "basic QUM5OTk6c2VjcmV0LXZhbHVl",
        "jwt eyJhbGciOi.eyJzdWIiOi.c2ln in a header", "key sk-abcdefghijklmnop0123",
        "POSTGRESQL://app:pa55@db/app", "redis://:pa55@cache:6379/0",
        "x-api-key=abc123", "Api-Key: abc123", "APIKEY=abc", "access_token=t0k",
        "Auth-Token: t0k", "refresh_token=t0k", "client_secret=s3c", "Secret_Key: s3c",
        "PASSWORD=hunter2", "passwd: hunter2", "PWD=hunter2", "secret=s3c", "TOKEN: t0k",
        "{'authorization': 'Basic abc'}", "request 0123456789abcdef done, nothing secret",
        # Letters IGNORECASE equates with ASCII ones: the long s, the Kelvin sign.
        "\u017fecret=abc", "api\u212aey: abc", "pa\u017f\u017fword=x",
    ],
)
def test_the_screen_before_the_patterns_lets_every_secret_shape_through(text: str) -> None:
    # The redactor skips its patterns for text its screen rules out: the result must be
    # what the patterns alone give, for every shape they scrub (in any letter case).
    from bootstrap import redaction

    expected = text
    for pattern, replacement in redaction._PATTERNS:
        expected = pattern.sub(replacement, expected)
    assert Redactor().scrub(text) == expected
    if expected != text:
        assert MASK in Redactor().scrub(text)
