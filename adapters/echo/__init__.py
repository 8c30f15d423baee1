"""Echo adapters: a responder that repeats the message (the offline default)."""

from adapters.echo.responder import EchoResponder

__all__ = ["EchoResponder"]
