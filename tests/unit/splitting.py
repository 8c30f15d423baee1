"""The splitter the use-case tests give the send: Twilio's, as the container binds it."""

from __future__ import annotations

from adapters.twilio.long_text import GraphemeTextSplitter

SPLITTER = GraphemeTextSplitter()
