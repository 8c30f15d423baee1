"""Intake with 1,000 owners against intake with one, measured in the same run.

Each side is the API in process (ASGI, no sockets: the difference measured is the owner
lookup, not the network) with the identity module, on its own SQLite database and queue
files: correctly signed inbound webhooks, each from an owner picked at random (on the
1,000-owner side: each of 500 contacts writes to one of them) with its own token, to
its own number. Rounds alternate between the
two sides so machine noise hits both; the best round of each is compared. The directory
is warmed once (its first load), as a running API's is.

Settings (environment): BENCH_OWNERS_REQUESTS (per round, default 800),
BENCH_OWNERS_ROUNDS (per side, default 6), BENCH_OWNERS_COUNT (default 1000).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from application.identity.directory import StoredOwnerDirectory
from application.identity.store import OwnerStore
from bootstrap.app import create_app
from bootstrap.cli import migrate
from bootstrap.container import build_container
from bootstrap.modules.identity import MODULE as IDENTITY
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.resources import Resources
from bootstrap.settings import Settings

REQUESTS = int(os.environ.get("BENCH_OWNERS_REQUESTS", "800"))
ROUNDS = int(os.environ.get("BENCH_OWNERS_ROUNDS", "6"))
OWNERS = int(os.environ.get("BENCH_OWNERS_COUNT", "1000"))
CONCURRENCY = 8
CONTACTS = 500
BASE = "http://bench"
PATH = "/channels/twilio/v1/webhooks/inbound"
DEFAULT_SID = "AC" + "f" * 32
DEFAULT_TOKEN = "bench-default-owner-token-0123456"  # benchmark-only value
DEFAULT_NUMBER = "+14150000000"


@dataclass(frozen=True)
class Sender:
    account_sid: str
    token: str
    number: str


class Side:
    def __init__(self, name: str, directory: Path, owners: int) -> None:
        self.name = name
        self.settings = Settings(  # type: ignore[call-arg]
            _env_file=None, api_environment="test", log_level="WARNING",
            database_url=f"sqlite:///{directory / 'app.db'}",
            queue_sqlite_db_path=str(directory / "queue.db"),
            twilio_account_sid=DEFAULT_SID, twilio_auth_token=DEFAULT_TOKEN,
            twilio_phone_number=f"whatsapp:{DEFAULT_NUMBER}")
        self.owners = owners
        self.senders = [Sender(DEFAULT_SID, DEFAULT_TOKEN, DEFAULT_NUMBER)]
        self.sent = 0

    async def start(self) -> None:
        migrate(self.settings)
        self.container = build_container(self.settings, modules=[WHATSAPP, IDENTITY])
        store = self.container[OwnerStore]
        for n in range(1, self.owners):
            sender = Sender(f"AC{n:032x}", f"bench-token-{n:020d}", f"+1415{n:07d}")
            await store.add(name=f"owner {n}", account_sid=sender.account_sid,
                            auth_token=sender.token, numbers=[sender.number])
            self.senders.append(sender)
        await self.container[StoredOwnerDirectory].snapshot()  # warm, as in a running API
        self.app = create_app(self.settings, self.container, embedded_worker=False)
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                        base_url=BASE)

    async def stop(self) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)
        await self.container[Resources].aclose()

    def _request(self) -> tuple[dict[str, str], str]:
        self.sent += 1
        # Each contact writes to one owner, so both sides reuse the same 500 open
        # conversations: only the owner lookup differs, not the rows written.
        contact = random.randrange(CONTACTS)
        sender = self.senders[(contact * 7919) % len(self.senders)]
        params = {"MessageSid": f"SM{self.sent:032x}", "AccountSid": sender.account_sid,
                  "From": f"whatsapp:+55119{contact:08d}",
                  "To": f"whatsapp:{sender.number}", "Body": "hello", "NumMedia": "0"}
        signature = RequestValidator(sender.token).compute_signature(f"{BASE}{PATH}", params)
        return params, str(signature)

    async def lookup_us(self, n: int = 50_000) -> float:
        """Microseconds per owner lookup, the part of intake the owner count could change."""
        directory = self.container[StoredOwnerDirectory]
        pairs = [(s.account_sid, f"whatsapp:{s.number}") for s in self.senders]
        started = time.perf_counter()
        for i in range(n):
            sid, to = pairs[i % len(pairs)]
            await directory.resolve(sid, to)
        return (time.perf_counter() - started) / n * 1e6

    async def round(self) -> float:
        """Requests per second over one round."""
        requests = [self._request() for _ in range(REQUESTS)]
        queue = iter(requests)

        async def client() -> None:
            for params, signature in queue:
                response = await self.client.post(PATH, data=params,
                                                  headers={"X-Twilio-Signature": signature})
                if response.status_code != 200:
                    raise RuntimeError(f"{self.name}: {response.status_code} {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        return REQUESTS / (time.perf_counter() - started)


async def main() -> None:
    with tempfile.TemporaryDirectory() as one_dir, tempfile.TemporaryDirectory() as many_dir:
        one = Side("1 owner", Path(one_dir), 1)
        many = Side(f"{OWNERS} owners", Path(many_dir), OWNERS)
        await one.start()
        await many.start()
        try:
            await one.round(), await many.round()  # warm-up
            best = {one.name: 0.0, many.name: 0.0}
            for _ in range(ROUNDS):
                for side in (one, many) if _ % 2 == 0 else (many, one):
                    best[side.name] = max(best[side.name], await side.round())
            lookups = {side.name: min([await side.lookup_us() for _ in range(3)])
                       for side in (one, many)}
        finally:
            await one.stop()
            await many.stop()
    ratio = best[many.name] / best[one.name]
    print(f"intake, in process on SQLite, concurrency {CONCURRENCY}, best of {ROUNDS} rounds "
          f"of {REQUESTS}: 1 owner {best[one.name]:.0f} req/s, {OWNERS} owners "
          f"{best[many.name]:.0f} req/s, ratio x{ratio:.3f} "
          f"({'meets' if ratio >= 0.95 else 'BELOW'} the x0.95 target); owner lookup "
          f"{lookups[one.name]:.2f} us with 1, {lookups[many.name]:.2f} us with {OWNERS}")
