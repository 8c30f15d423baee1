"""Scrubs secrets from log events: known values from settings, and shapes of secrets.

Runs as the last structlog processor before rendering, after tracebacks were turned into
text, so a secret inside an exception message or a formatted stack is scrubbed too.
Bare 32-hex strings (the shape of a Twilio auth token) are not scrubbed by pattern: request
ids and MessageSids look the same. The configured tokens are scrubbed as known values.

Outside development, contacts' phone numbers and e-mail addresses are masked too
(``bootstrap.contacts``): in the message, in every field and in exception text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from bootstrap.contacts import CONTACT_KEYS, mask_contact_value, mask_contacts
from bootstrap.settings import Settings

MASK = "[REDACTED]"

# Keys whose value is a secret whatever it looks like (compared lower-case, '-' as '_').
SECRET_KEYS = frozenset({
    "authorization", "proxy_authorization", "x_api_key", "api_key", "apikey", "password",
    "passwd", "secret", "secret_key", "client_secret", "token", "access_token", "auth_token",
    "refresh_token", "id_token", "llm_api_key", "twilio_auth_token", "cookie", "set_cookie",
})

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values: "Bearer <token>", "Basic <base64>".
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\1\2{MASK}"),
    # JWTs: base64url JSON header ('{"' encodes to 'eyJ'), payload and signature.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"), MASK),
    # OpenAI-style API keys (LLM providers), even when not the configured one.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), MASK),
    # user:password@ in any URL (postgresql://, redis://, https://...); empty user too.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*):([^@/\s]+)@"), rf"\1:{MASK}@"),
    # key=value, key: value, "key": "value" for secret-sounding keys (query strings, headers,
    # reprs of dicts). The value ends at whitespace, a quote, '&', ',', ';' or '}'.
    (re.compile(
        r"(?i)\b(x-api-key|api[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|"
        r"client[_-]?secret|secret[_-]?key|password|passwd|pwd|secret|token|authorization)"
        r"""(["']?\s*[:=]\s*["']?)(?!\[REDACTED\])[^\s"'&,;}\]]+"""),
     rf"\1\2{MASK}"),
)

# Text that none of the patterns could match skips them: one search instead of five
# substitutions on nearly every value of every log line (ids, timestamps, messages). Each
# pattern needs at least one of these words (its key names, "eyJ", "sk-", "://"), so the
# screen only ever lets more text through to the patterns, never less. It searches the
# case-folded text (folding also maps the letters that IGNORECASE equates with ASCII, such
# as the long s and the Kelvin sign): six times cheaper than an IGNORECASE alternation.
# The words are literals, so the screen is a substring test per word: on an access line's
# 300 characters a quarter cheaper than a regular expression alternating over them.
_SCREEN_WORDS = ("bearer", "basic", "eyj", "sk-", "://", "key", "token", "secret", "passw",
                 "pwd", "authorization")


def _screened(folded: str) -> bool:
    """Whether case-folded text holds a word some pattern needs."""
    return any(word in folded for word in _SCREEN_WORDS)

_MIN_KNOWN_LENGTH = 6  # shorter "secrets" would scrub ordinary words
# Joins a line's values for one scrub (``Redactor._plain``): no secret word contains it.
_SEPARATOR = "\x00"


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, as text: tokens, keys, passwords inside URLs."""
    values: list[str] = [settings.owner_auth_token, settings.secret_key.get_secret_value()]
    for secret in (settings.twilio_auth_token, settings.twilio_internal_api_key,
                   settings.llm_api_key, settings.supabase_key, settings.supabase_service_key,
                   settings.queue_aws_secret_access_key):
        if secret is not None:
            values.append(secret.get_secret_value())
    for url in (settings.database_url, settings.queue_redis_url, settings.llm_base_url,
                settings.otel_exporter_otlp_endpoint):
        password = _url_password(url)
        if password:
            values.append(password)
    return values


def _url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    # Cached: a log line's keys are nearly always the same few dozen names.
    return key.lower().replace("-", "_") in SECRET_KEYS


@functools.lru_cache(maxsize=1024)
def _is_contact_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in CONTACT_KEYS


def masks_contacts(settings: Settings) -> bool:
    """Developers see their own test numbers; every other environment holds customers'."""
    return settings.api_environment != "development"


# Secrets learnt while running (owners' auth tokens, as the identity module opens them).
# Matched as whole url-safe words of 16+ characters, looked up in a set: one scan per
# text whatever their number (a thousand owners must not cost a thousand searches).
_RUNTIME_SECRETS: set[str] = set()
_SECRET_WORD = re.compile(r"[A-Za-z0-9_\-]{16,}")


def register_secret(value: str) -> None:
    """Scrub ``value`` from every log line from now on (a url-safe word of 16+ chars)."""
    if len(value) >= 16:
        _RUNTIME_SECRETS.add(value)


def _scrub_runtime(text: str) -> str:
    if not _RUNTIME_SECRETS:
        return text
    return _SECRET_WORD.sub(
        lambda m: MASK if m.group(0) in _RUNTIME_SECRETS else m.group(0), text)


class Redactor:
    """A structlog processor; also usable on plain text with ``scrub``."""

    def __init__(self, known: Iterable[str] = (), *, mask_contacts: bool = False) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._known = sorted({k for k in known if len(k) >= _MIN_KNOWN_LENGTH},
                             key=len, reverse=True)
        self._mask_contacts = mask_contacts

    def scrub(self, text: str) -> str:
        for value in self._known:
            if value in text:
                text = text.replace(value, MASK)
        text = _scrub_runtime(text)
        if _screened(text.casefold()):
            for pattern, replacement in _PATTERNS:
                text = pattern.sub(replacement, text)
        return mask_contacts(text) if self._mask_contacts else text

    def _value(self, key: object, value: Any) -> Any:
        if isinstance(key, str) and _is_secret_key(key) and value:
            return MASK
        if isinstance(value, str):
            if self._mask_contacts and _is_contact_key(key):
                return mask_contact_value(self.scrub(value))
            return self.scrub(value)
        if isinstance(value, bytes):
            return self.scrub(value.decode("utf-8", "replace"))
        if isinstance(value, Mapping):
            return {k: self._value(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(None, v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        # Anything else would be rendered with repr(): scrub that text.
        return self.scrub(repr(value))

    def __call__(
        self, logger: object, method: str, event_dict: MutableMapping[str, Any]
    ) -> dict[str, Any]:
        if self._plain(event_dict):
            return dict(event_dict)
        return {key: self._value(key, value) for key, value in event_dict.items()}

    def _plain(self, event_dict: MutableMapping[str, Any]) -> bool:
        """True when ``_value`` would return every value as it is.

        Nearly every line holds no secret, and scrubbing its values one by one was a third
        of the line's cost. So the line's texts are scrubbed once, joined: what would
        change in one value changes in the join, and a change across a separator only sends
        the line to the value-by-value path, never lets a secret through.
        """
        texts: list[str] = []
        for key, value in event_dict.items():
            if not isinstance(key, str) or _is_secret_key(key) or (
                    self._mask_contacts and _is_contact_key(key)):
                return False  # masked by its name
            if type(value) is str:
                texts.append(value)
            elif not (value is None or isinstance(value, bool | int | float)):
                return False  # bytes, containers and objects: scrubbed value by value
        joined = _SEPARATOR.join(texts)
        return self.scrub(joined) == joined
