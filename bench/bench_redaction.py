"""Cost per log line of the redactor, with contact masking (every environment but
development) against the secrets-only redactor as the baseline, measured in the same run."""

from __future__ import annotations

import time
from typing import Any

from bootstrap.redaction import Redactor

LINES = 20_000
KNOWN = ["f00dbabe" * 4, "internal-api-key-5f2e9c", "sk-live-llm-key-77a1b2c3"]


def _events() -> list[dict[str, Any]]:
    return [
        {"event": "job generate_reply finished: success in 0.412s", "job_id": "01J9ZK3Y7M8N9P0Q",
         "task": "generate_reply", "attempt": 1, "duration_s": 0.412, "level": "info",
         "timestamp": "2026-11-30T21:50:11.123456Z", "correlation_id": "SM" + "ab" * 16},
        {"event": "reply to whatsapp:+5511977774567 failed: LLM answered 503", "level": "warning",
         "to": "whatsapp:+5511977774567", "wa_id": "5511977774567"},
        {"event": "POST /channels/twilio/v1/webhooks/inbound 200", "request_id": "r-1",
         "client": "10.0.0.7", "level": "info"},
        {"event": "contact wrote from joana.silva@example.com: " + "lorem ipsum " * 30,
         "level": "info"},
    ]


def _per_line(redactor: Redactor, events: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for n in range(LINES):
        redactor(None, "info", dict(events[n % len(events)]))
    return (time.perf_counter() - started) / LINES * 1e6


def main() -> None:
    events = _events()
    baseline = Redactor(KNOWN)
    masking = Redactor(KNOWN, mask_contacts=True)
    _per_line(baseline, events), _per_line(masking, events)  # warm-up
    plain = min(_per_line(baseline, events) for _ in range(3))
    masked = min(_per_line(masking, events) for _ in range(3))
    print(f"redactor per log line: secrets only {plain:.1f} us, with contact masking "
          f"{masked:.1f} us (+{masked - plain:.1f} us, x{masked / plain:.2f}); {LINES} lines, "
          f"best of 3")
