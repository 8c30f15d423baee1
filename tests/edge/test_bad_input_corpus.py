"""The bad-input corpus over a real socket, on SQLite and PostgreSQL: every case is refused
with its envelope, none is a 5xx, none stores a row, and health is unaffected."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest

from tests.edge.server import INBOUND, STATUS, EdgeServer, inbound, sign

pytestmark = pytest.mark.e2e

SID = "SM" + "a" * 32
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Raw:
    """A request whose body is given as bytes, signed over ``signed`` when set."""

    path: str
    body: bytes
    signed: dict[str, str] | None = None
    content_type: str = FORM
    headers: tuple[tuple[str, str], ...] = ()


def raw_form(path: str, params: dict[str, str], **kw: object) -> Raw:
    return Raw(path, urlencode(params).encode(), params, **kw)  # type: ignore[arg-type]


def encoded(text: str) -> bytes:
    return text.encode()


# Each case: (request, expected status, expected code).
CORPUS: dict[str, tuple[Raw, int, str]] = {
    "nul-in-body": (raw_form(INBOUND, inbound(SID, "a\x00b")), 400, "INVALID_TEXT"),
    "nul-in-message-sid": (raw_form(INBOUND, inbound(SID + "\x00")), 400, "INVALID_TEXT"),
    "nul-in-media-url": (raw_form(INBOUND, inbound(SID, NumMedia="1",
                                                   MediaUrl0="https://x/\x00")),
                         400, "INVALID_TEXT"),
    "5000-char-message-sid": (raw_form(INBOUND, inbound("SM" + "a" * 4998)), 422,
                              "VALIDATION_ERROR"),
    "folded-parameter-message-sid": (raw_form(INBOUND, {
        k: v for k, v in inbound(SID + "NumMedia0").items() if k != "NumMedia"}),
        422, "VALIDATION_ERROR"),
    "body-over-4096-chars": (raw_form(INBOUND, inbound(SID, "x" * 4097)), 422,
                             "VALIDATION_ERROR"),
    "num-media-not-small": (raw_form(INBOUND, inbound(SID, NumMedia="99")), 422,
                            "VALIDATION_ERROR"),
    "num-media-negative": (raw_form(INBOUND, inbound(SID, NumMedia="-1")), 422,
                           "VALIDATION_ERROR"),
    "media-url-not-http": (raw_form(INBOUND, inbound(SID, NumMedia="1",
                                                     MediaUrl0="file:///etc/passwd")),
                           422, "VALIDATION_ERROR"),
    "from-not-whatsapp": (raw_form(INBOUND, inbound(SID, From="+5511966665555")), 422,
                          "VALIDATION_ERROR"),
    "to-garbage": (raw_form(INBOUND, inbound(SID, To="whatsapp:+1<script>")), 422,
                   "VALIDATION_ERROR"),
    "sms-sid-mm-malformed": (raw_form(INBOUND, inbound(SID, SmsSid="MMxyz")), 422,
                             "VALIDATION_ERROR"),
    "profile-name-huge": (raw_form(INBOUND, inbound(SID, ProfileName="p" * 3000)), 422,
                          "VALIDATION_ERROR"),
    "unknown-field-huge": (raw_form(INBOUND, inbound(SID, Future="f" * 3000)), 422,
                           "VALIDATION_ERROR"),
    "account-sid-malformed": (raw_form(INBOUND, inbound(SID, AccountSid="AC1")), 403,
                              "UNKNOWN_OWNER"),
    "invalid-utf8": (Raw(INBOUND, urlencode(inbound(SID)).encode() + b"&Body2=%FF%FE"),
                     400, "INVALID_ENCODING"),
    "raw-invalid-utf8": (Raw(INBOUND, b"MessageSid=" + SID.encode() + b"&Body=\xff"),
                         400, "INVALID_ENCODING"),
    "lone-surrogate": (Raw(INBOUND, urlencode(inbound(SID)).encode() + b"&X=%ED%A0%80"),
                       400, "INVALID_ENCODING"),
    "repeated-field": (Raw(INBOUND, urlencode(inbound(SID)).encode() + b"&Body=again"),
                       400, "REPEATED_FIELD"),
    "too-many-fields": (raw_form(INBOUND, inbound(SID) | {f"F{i}": "x" for i in range(100)}),
                        400, "TOO_MANY_FIELDS"),
    "bad-field-name": (Raw(INBOUND, urlencode(inbound(SID)).encode() + b"&%3Cx%3E=1"),
                       400, "INVALID_FIELD_NAME"),
    "multipart-with-file": (Raw(INBOUND, (
        b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + b"\x00" * 1000 + b"\r\n--b--\r\n"),
        content_type="multipart/form-data; boundary=b"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    "json-body": (Raw(INBOUND, json.dumps(inbound(SID)).encode(),
                      content_type="application/json"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    "latin1-charset": (raw_form(INBOUND, inbound(SID), content_type=FORM + "; charset=latin-1"),
                       415, "UNSUPPORTED_MEDIA_TYPE"),
    "no-content-type": (raw_form(INBOUND, inbound(SID), content_type=""), 415,
                        "UNSUPPORTED_MEDIA_TYPE"),
    "body-over-the-byte-limit": (raw_form(INBOUND, inbound(SID, Pad="p" * 70000)), 413,
                                 "PAYLOAD_TOO_LARGE"),
    "unsigned": (Raw(INBOUND, urlencode(inbound(SID)).encode()), 403, "INVALID_SIGNATURE"),
    "signed-for-another-host": (Raw(INBOUND, urlencode(inbound(SID)).encode(), headers=(
        ("X-Twilio-Signature", sign(f"https://evil.example.com{INBOUND}", inbound(SID))),
        ("Host", "evil.example.com"), ("X-Forwarded-Host", "evil.example.com"),
        ("X-Forwarded-Proto", "https"))), 403, "INVALID_SIGNATURE"),
    "status-error-code-over-32": (raw_form(STATUS, {
        "MessageSid": SID, "MessageStatus": "failed", "AccountSid": inbound(SID)["AccountSid"],
        "ErrorCode": "9" * 40}), 422, "VALIDATION_ERROR"),
    "status-not-twilio": (raw_form(STATUS, {"MessageSid": SID, "MessageStatus": "exploded"}),
                          422, "VALIDATION_ERROR"),
    "status-nul-sid": (raw_form(STATUS, {"MessageSid": SID + "\x00", "MessageStatus": "sent"}),
                       400, "INVALID_TEXT"),
    "status-5000-char-sid": (raw_form(STATUS, {"MessageSid": "SM" + "1" * 4998,
                                               "MessageStatus": "sent"}),
                             422, "VALIDATION_ERROR"),
}


def send_raw(server: EdgeServer, client: httpx.Client, case: Raw) -> httpx.Response:
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    if case.signed is not None:
        headers["X-Twilio-Signature"] = sign(server.url(case.path), case.signed)
    headers.update(dict(case.headers))
    return client.post(server.url(case.path), content=case.body, headers=headers)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


@pytest.mark.parametrize("name", list(CORPUS))
def test_bad_webhook_input_is_refused_with_no_row(
    edge_server: EdgeServer, client: httpx.Client, name: str
) -> None:
    case, status, code = CORPUS[name]
    before = edge_server.rows()
    response = send_raw(edge_server, client, case)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert response.headers["x-request-id"]
    assert edge_server.rows() == before
    assert client.get(edge_server.url("/health/live")).status_code == 200


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


API = "/api/v1"
# (method, path, json body or None, extra headers, expected status)
API_CORPUS: dict[str, tuple[str, str, object, dict[str, str], int]] = {
    "cursor-nul": ("GET", f"{API}/conversations?cursor={_cursor(b'01J' + bytes(5))}", None,
                   {}, 400),
    "cursor-quote": ("GET", f"{API}/conversations?cursor=" + _cursor(b"' OR 1=1"), None, {},
                     400),
    "cursor-junk": ("GET", f"{API}/conversations?cursor=%00%00", None, {}, 400),
    "path-nul": ("GET", f"{API}/conversations/%00abc/messages", None, {}, 422),
    "path-long": ("GET", f"{API}/conversations/{'A' * 5000}/messages", None, {}, 422),
    "path-unknown-ulid": ("GET", f"{API}/conversations/{'0' * 26}/messages", None, {}, 404),
    "body-nul": ("POST", f"{API}/messages", {"to": "whatsapp:+5511966665555",
                                             "body": "a\u0000b"}, {}, 422),
    "body-lone-surrogate": ("POST", f"{API}/messages", {"to": "whatsapp:+5511966665555",
                                                        "body": "a\ud800b"}, {}, 422),
    "body-too-long": ("POST", f"{API}/messages", {"to": "whatsapp:+5511966665555",
                                                  "body": "x" * 4097}, {}, 422),
    "to-nul": ("POST", f"{API}/messages", {"to": "whatsapp:+55119\u00006665555",
                                           "body": "x"}, {}, 422),
    "media-url-nul": ("POST", f"{API}/messages", {"to": "whatsapp:+5511966665555",
                                                  "media_urls": ["https://x/\u0000"]}, {}, 422),
    "idempotency-key-control": ("POST", f"{API}/messages", {"to": "whatsapp:+5511966665555",
                                                            "body": "x"},
                                {"Idempotency-Key": "a\tb"}, 422),
    "not-json": ("POST", f"{API}/messages", b"\xff\xfe", {"Content-Type": "application/json"},
                 422),
}


@pytest.mark.parametrize("name", list(API_CORPUS))
def test_bad_internal_api_input_is_refused_with_no_row(
    edge_server: EdgeServer, client: httpx.Client, name: str
) -> None:
    method, path, body, headers, status = API_CORPUS[name]
    before = edge_server.rows()
    all_headers = edge_server.auth() | headers
    if isinstance(body, bytes):
        response = client.request(method, edge_server.url(path), content=body,
                                  headers=all_headers)
    elif body is None:
        response = client.request(method, edge_server.url(path), headers=all_headers)
    else:
        # ensure_ascii keeps a lone surrogate as its JSON escape, as an attacker would send it.
        response = client.request(method, edge_server.url(path),
                                  content=json.dumps(body).encode(),
                                  headers=all_headers | {"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert "code" in response.json()
    assert edge_server.rows() == before


def test_after_the_corpus_a_good_message_is_stored_and_health_is_ready(
    edge_server: EdgeServer, client: httpx.Client
) -> None:
    before = edge_server.rows()
    sid = "SM" + "b" * 32
    response = edge_server.signed_form(client, INBOUND, inbound(sid, "still here"))
    assert response.status_code == 200, response.text
    assert edge_server.rows()[0] == before[0] + 1
    assert client.get(edge_server.url("/health/ready")).status_code == 200
    assert "Traceback" not in edge_server.log()


def test_a_header_block_over_the_limit_is_a_4xx(edge_server: EdgeServer) -> None:
    with socket.create_connection(("127.0.0.1", edge_server.port), timeout=5) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 40000
                     + b"\r\n\r\n")
        answer = b""
        while part := sock.recv(4096):  # the answer says Connection: close
            answer += part
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b"HEADERS_TOO_LARGE" in answer


