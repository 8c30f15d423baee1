"""Twilio REST adapters: outbound messages through Twilio's Messages API."""

from adapters.twilio.sender import TwilioMessageSender

__all__ = ["TwilioMessageSender"]
