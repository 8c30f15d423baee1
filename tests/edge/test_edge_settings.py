"""The edge's settings: validated at start-up and handed to the server as configured."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from bootstrap.serve import FD_RESERVE, server_config
from bootstrap.settings import SettingsError, load_settings
from tests.conftest import MakeSettings


def test_a_trusted_proxy_that_is_no_address_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_TRUSTED_PROXIES", "10.0.0.0/8, not-an-ip")
    with pytest.raises(SettingsError, match="API_TRUSTED_PROXIES"):
        load_settings(env_file=None)
    monkeypatch.setenv("API_TRUSTED_PROXIES", "10.0.0.0/8, ::1")
    assert load_settings(env_file=None).api_trusted_proxies == ["10.0.0.0/8", "::1"]


def test_server_config_carries_the_bounds(make_settings: MakeSettings) -> None:
    settings = make_settings(api_keepalive_timeout_seconds=7, api_backlog=99,
                             api_max_header_bytes=8192, api_header_timeout_seconds=3,
                             api_max_connections=5000)
    config = server_config(FastAPI(), settings, host="127.0.0.1", port=1, fd_limit=1024)
    assert (config.timeout_keep_alive, config.backlog) == (7, 99)
    assert config.h11_max_incomplete_event_size == 8192
    assert config.proxy_headers is False
    protocol = config.http
    assert not isinstance(protocol, str)
    # Never more connections than descriptors allow.
    assert protocol.max_connections == 1024 - FD_RESERVE  # type: ignore[attr-defined]
    assert protocol.header_timeout == 3  # type: ignore[attr-defined]
    roomy = server_config(FastAPI(), settings, host="127.0.0.1", port=1, fd_limit=100_000)
    assert roomy.http.max_connections == 5000  # type: ignore[union-attr]
