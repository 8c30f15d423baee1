"""Fixtures the end-to-end tests share: the fake model server, and the fake Twilio
server answering ``sent`` (a module that needs another answer defines its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.fake_llm import FakeLLMServer
from tests.fakes.fake_twilio import FakeTwilioServer


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        server.reply_status = "sent"
        yield server
