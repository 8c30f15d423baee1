"""Console adapters: a sender that logs instead of sending (the offline default)."""

from adapters.console.sender import ConsoleMessageSender

__all__ = ["ConsoleMessageSender"]
