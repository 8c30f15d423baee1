"""Domain errors. Each carries a stable ``code``; the HTTP adapter maps codes to statuses."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidWhatsAppAddress(DomainError):
    code = "INVALID_WHATSAPP_ADDRESS"


class InvalidIdentifier(DomainError):
    code = "INVALID_IDENTIFIER"


class InvalidStatusTransition(DomainError):
    code = "INVALID_STATUS_TRANSITION"


class DuplicateMessage(DomainError):
    """A message with this provider id (Twilio ``MessageSid``) is already stored."""

    code = "DUPLICATE_MESSAGE"

    def __init__(self, provider_sid: str) -> None:
        super().__init__(f"message {provider_sid} is already stored")
        self.provider_sid = provider_sid


class InvalidText(DomainError):
    """Text breaks the storage rule (NUL, lone surrogates) or its length bound."""

    code = "INVALID_TEXT"
