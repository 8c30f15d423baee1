"""Chaos: one fault each, mid-load, against real processes; zero lost, zero doubled.

Every test starts real ``wta`` processes, posts a steady load of signed webhooks (each
re-posted until a 200, as Twilio does), injects one fault a second into the load, and then
checks at the fake Twilio server that every acknowledged message got exactly one reply.
Recovery times are printed (run with ``-s``); the only timing assertions are generous
bounds that show recovery takes seconds, not minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.chaos.harness import (
    Cluster,
    Load,
    SendClock,
    claimed_unsent,
    verdict,
    wait_for_replies,
)
from tests.conftest import free_port
from tests.fakes.fake_twilio import FakeTwilioServer
from tests.fakes.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(150)]

FAULT_AFTER = 1.0  # seconds into the load (of about three)
RECOVERY_BOUND = 30.0  # "within seconds": generous for a shared two-core machine
SETTLE = 1.5  # after the last reply, room for a wrongly doubled one to show up


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture
def cluster_of(tmp_path: Path, twilio: FakeTwilioServer) -> Iterator[type[Cluster]]:
    made: list[Cluster] = []

    def make(**values: str) -> Cluster:
        cluster = Cluster(tmp_path, free_port(), twilio, **values)
        cluster.migrate()
        made.append(cluster)
        return cluster

    yield make  # type: ignore[misc]
    for cluster in made:
        cluster.stop_all()


@pytest.fixture
def flushed_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def finish(name: str, cluster: Cluster, load: Load, twilio: FakeTwilioServer,
           clock: SendClock, fault_at: float, back_at: float | None = None,
           killed_concurrency: int = 0) -> None:
    """``back_at``: when a restarted process was ready again (its boot time on a busy
    machine is not the system's recovery, so the bound counts from there).
    ``killed_concurrency``: jobs the killed process could run at once; at most that many
    replies can be cut off between their claim and the Twilio call (see claimed_unsent).
    """
    load.join(timeout=60)
    # Let redelivery settle first: a claim still in flight would look cut off.
    wait_for_replies(load, twilio, cluster, timeout=RECOVERY_BOUND,
                     held=claimed_unsent(cluster) if killed_concurrency else None)
    held: set[str] = set()
    if killed_concurrency:  # only the SQLite configurations kill a process mid-job
        held = claimed_unsent(cluster) - {(s.body or "")[6:] for s in twilio.sent}
    assert len(held) <= killed_concurrency, held
    replied_at = wait_for_replies(load, twilio, cluster, timeout=RECOVERY_BOUND, held=held)
    time.sleep(SETTLE)
    verdict(name, load, twilio, clock, fault_at, replied_at, held)
    assert len(load.acked) == load.count, "every message is acknowledged once service is back"
    assert replied_at - (back_at or fault_at) < RECOVERY_BOUND


def test_kill9_of_the_api_with_its_embedded_worker(
    cluster_of: type[Cluster], twilio: FakeTwilioServer
) -> None:
    """Embedded defaults (SQLite database, SQLite queue); a supervisor restarts the API."""
    cluster = cluster_of()
    api = cluster.start("api", "serve", "--with-worker")
    cluster.wait_ready()
    with SendClock(twilio) as clock:
        load = Load(cluster, twilio).start()
        time.sleep(FAULT_AFTER)
        cluster.kill9(api)
        fault_at = time.monotonic()
        cluster.start("api-restarted", "serve", "--with-worker")
        cluster.wait_ready(timeout=60)
        back_at = time.monotonic()
        print(f"\nchaos[kill -9 API+embedded worker]: the restarted API was ready "
              f"{back_at - fault_at:.2f}s after the kill")
        finish("kill -9 API+embedded worker, sqlite", cluster, load, twilio, clock, fault_at,
               back_at, killed_concurrency=4)


def test_kill9_of_a_separate_worker(cluster_of: type[Cluster], twilio: FakeTwilioServer) -> None:
    """Two workers on the SQLite queue; the survivor takes over the dead one's jobs."""
    cluster = cluster_of(WORKER_CONCURRENCY="2")
    cluster.start("api", "serve")
    doomed = cluster.start("worker-a", "worker")
    cluster.start("worker-b", "worker")
    cluster.wait_ready()
    with SendClock(twilio) as clock:
        load = Load(cluster, twilio).start()
        time.sleep(FAULT_AFTER)
        cluster.kill9(doomed)
        fault_at = time.monotonic()
        finish("kill -9 one of two workers, sqlite queue", cluster, load, twilio, clock,
               fault_at, killed_concurrency=2)


def test_postgres_restart(
    cluster_of: type[Cluster], twilio: FakeTwilioServer, postgres_database: str,
    flushed_redis: redis.Redis, redis_url: str
) -> None:
    """PostgreSQL goes away for two seconds and comes back (DATABASE_BACKEND=postgres, arq).

    The server is shared with other test runs, so it is not restarted for real: every
    connection of the processes under test goes through a TCP proxy that is cut and then
    restored. From the client side this is what a restart looks like: open connections
    die mid-use, new ones are refused, and after a while connecting works again.
    """
    host_port, _, name = postgres_database.rpartition("/")
    with TcpProxy("127.0.0.1", int(host_port.rsplit(":", 1)[1])) as proxy:
        cluster = cluster_of(
            DATABASE_BACKEND="postgres",
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}",
            QUEUE_BACKEND="arq", QUEUE_REDIS_URL=redis_url,
        )
        cluster.start("api", "serve")
        cluster.start("worker", "worker")
        cluster.wait_ready()
        with SendClock(twilio) as clock:
            load = Load(cluster, twilio).start()
            time.sleep(FAULT_AFTER)
            proxy.cut()
            fault_at = time.monotonic()
            time.sleep(2.0)
            proxy.restore()
            finish("PostgreSQL restart (proxy cut 2 s), postgres + arq", cluster, load, twilio,
                   clock, fault_at)


def test_redis_flush(
    cluster_of: type[Cluster], twilio: FakeTwilioServer, flushed_redis: redis.Redis,
    redis_url: str
) -> None:
    """FLUSHDB mid-load with QUEUE_BACKEND=arq: queued jobs and dedup keys are gone, and
    the sweep puts back the work of every message still missing its reply."""
    cluster = cluster_of(QUEUE_BACKEND="arq", QUEUE_REDIS_URL=redis_url,
                         WORKER_SWEEP_INTERVAL_SECONDS="1", WORKER_SWEEP_AFTER_SECONDS="2")
    cluster.start("api", "serve")
    cluster.start("worker", "worker")
    cluster.wait_ready()
    with SendClock(twilio) as clock:
        load = Load(cluster, twilio).start()
        time.sleep(FAULT_AFTER)
        flushed_redis.flushdb()
        fault_at = time.monotonic()
        finish("Redis FLUSHDB, sqlite + arq", cluster, load, twilio, clock, fault_at)
