"""Twilio: the default owner's account, the REST API, and the internal API's key."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from bootstrap.settings._common import ConcernSettings, http_url

DEV_ACCOUNT_SID = "AC" + "0" * 32
DEV_AUTH_TOKEN = "development-auth-token"  # noqa: S105 - refused in production
DEV_PHONE_NUMBER = "whatsapp:+14155238886"


class TwilioSettings(ConcernSettings):
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_internal_api_key: SecretStr | None = None
    twilio_validate_signature: bool = True
    twilio_status_callback_url: str | None = None
    twilio_timeout_seconds: float = Field(10.0, gt=0)

    @field_validator("twilio_phone_number")
    @classmethod
    def _whatsapp_number(cls, value: str | None) -> str | None:
        if value and not value.startswith("whatsapp:"):
            return f"whatsapp:{value}"
        return value

    @field_validator("twilio_api_base_url")
    @classmethod
    def _twilio_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @property
    def owner_account_sid(self) -> str:
        return self.twilio_account_sid or DEV_ACCOUNT_SID

    @property
    def owner_auth_token(self) -> str:
        token = self.twilio_auth_token
        return token.get_secret_value() if token else DEV_AUTH_TOKEN

    @property
    def owner_phone_number(self) -> str:
        return self.twilio_phone_number or DEV_PHONE_NUMBER

    @property
    def uses_twilio_sender(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)
