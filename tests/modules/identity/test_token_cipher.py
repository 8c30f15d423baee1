"""Owners' tokens sealed with Fernet: rotation keeps them readable, a wrong key says so
without echoing anything."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from adapters.identity.fernet import FernetTokenCipher, derived_key
from application.identity.cipher import TokenUnreadable

TOKEN = "a-twilio-auth-token-0123456789ab"  # test-only value


def test_a_sealed_token_opens_and_never_contains_the_token() -> None:
    cipher = FernetTokenCipher([Fernet.generate_key().decode()])
    sealed = cipher.seal(TOKEN)
    assert TOKEN not in sealed and cipher.open(sealed) == TOKEN
    assert cipher.seal(TOKEN) != sealed  # a fresh IV each time


def test_rotation_new_key_first_reseals_then_the_old_key_can_go() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_old = FernetTokenCipher([old]).seal(TOKEN)
    both = FernetTokenCipher([new, old])
    assert both.open(sealed_old) == TOKEN
    resealed = both.reseal(sealed_old)
    assert FernetTokenCipher([new]).open(resealed) == TOKEN
    with pytest.raises(TokenUnreadable) as refused:
        FernetTokenCipher([new]).open(sealed_old)
    assert TOKEN not in str(refused.value) and old not in str(refused.value)


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as refused:
        FernetTokenCipher(["not-a-key-but-a-secret"])
    assert "not-a-key-but-a-secret" not in str(refused.value)
    assert "secret" not in repr(FernetTokenCipher([derived_key("secret")]))


def test_the_derived_key_is_stable_and_depends_on_the_secret() -> None:
    assert derived_key("s1") == derived_key("s1") != derived_key("s2")
    FernetTokenCipher([derived_key("s1")])  # a valid Fernet key


def test_a_token_the_module_opens_is_scrubbed_from_log_lines() -> None:
    from bootstrap.modules.identity import _ScrubbedCipher
    from bootstrap.redaction import Redactor

    token = "f0e1d2c3b4a5968778695a4b3c2d1e0f"  # the shape of a Twilio auth token
    cipher = _ScrubbedCipher(FernetTokenCipher([Fernet.generate_key().decode()]))
    sealed = cipher.seal(token)
    assert cipher.open(sealed) == token
    line = Redactor()(None, "error", {"event": f"twilio said 401 for {token}",
                                      "detail": {"token_was": token}})
    assert token not in repr(line)
    # Ordinary words and ids around it are left alone.
    assert "twilio said 401 for" in line["event"]
