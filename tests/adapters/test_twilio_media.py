"""Fetching inbound media from the fake Twilio over loopback: Basic auth, the redirect to
the CDN, the size cap, the type allow-list, and what is retried."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.twilio.media import TwilioMediaFetcher
from application.ports.media_fetcher import MediaRejected, MediaUnavailable
from tests.fakes.fake_twilio import FakeTwilioServer, fake_twilio_server

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 64


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioServer]:
    with fake_twilio_server() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as c:
        yield c


def fetcher(twilio: FakeTwilioServer, client: httpx.AsyncClient, *, token: str | None = None,
            max_bytes: int = 1 << 20) -> TwilioMediaFetcher:
    return TwilioMediaFetcher(
        account_sid=twilio.account_sid, auth_token=token or twilio.auth_token, client=client,
        max_bytes=max_bytes, allowed_types={"image/jpeg", "audio/ogg"},
        base_url=twilio.base_url)


async def test_media_is_fetched_with_the_accounts_credentials_through_the_redirect(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    url = twilio.host_media(JPEG, "image/jpeg")
    fetched = await fetcher(twilio, client).fetch(url)
    assert fetched.data == JPEG and fetched.content_type == "image/jpeg"
    assert (url.removeprefix(twilio.base_url), True) in twilio.media_requests


async def test_wrong_credentials_are_refused_for_good(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    url = twilio.host_media(JPEG, "image/jpeg")
    with pytest.raises(MediaRejected) as info:
        await fetcher(twilio, client, token="not-the-token").fetch(url)
    assert "401" in str(info.value) and "not-the-token" not in str(info.value)


async def test_a_provider_error_is_retried(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    url = twilio.host_media(JPEG, "image/jpeg", fail_first=1)
    with pytest.raises(MediaUnavailable):
        await fetcher(twilio, client).fetch(url)
    assert (await fetcher(twilio, client).fetch(url)).data == JPEG


async def test_too_large_and_disallowed_types_and_missing_items_are_refused(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(MediaRejected, match="larger"):
        await fetcher(twilio, client, max_bytes=100).fetch(twilio.host_media(JPEG, "image/jpeg"))
    with pytest.raises(MediaRejected, match="not allowed"):
        await fetcher(twilio, client).fetch(twilio.host_media(b"MZ", "application/x-msdownload"))
    gone = twilio.host_media(JPEG, "image/jpeg").rsplit("/", 1)[0] + "/ME" + "0" * 32
    with pytest.raises(MediaRejected, match="404"):
        await fetcher(twilio, client).fetch(gone)


async def test_credentials_never_go_to_another_host(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    before = len(twilio.media_requests)
    with pytest.raises(MediaRejected, match="not on"):
        await fetcher(twilio, client).fetch("https://attacker.example/steal")
    assert len(twilio.media_requests) == before


async def test_an_unreachable_host_is_retried(client: httpx.AsyncClient) -> None:
    from tests.conftest import free_port

    base = f"http://127.0.0.1:{free_port()}"
    lonely = TwilioMediaFetcher(account_sid="AC1", auth_token="t", client=client,
                                max_bytes=10, allowed_types={"image/jpeg"}, base_url=base)
    with pytest.raises(MediaUnavailable):
        await lonely.fetch(f"{base}/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1")
