"""``wta``: serve, worker, migrate, simulate, dlq."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from bootstrap import event_loop
from bootstrap.module import CompositionError
from bootstrap.owner_cli import add_owner_parser
from bootstrap.settings import Settings, SettingsError, load_settings

DEFAULT_CONTACT = "whatsapp:+5511999990000"


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from bootstrap.app import create_app
    from bootstrap.serve import serve, serve_processes

    host, port = args.host or settings.api_host, args.port or settings.api_port
    if args.workers > 1:
        # Each process builds its own app, and so its own connections, after the fork.
        return serve_processes(
            lambda: create_app(settings, embedded_worker=args.with_worker or None),
            settings, host=host, port=port, processes=args.workers,
        )
    serve(create_app(settings, embedded_worker=args.with_worker or None), settings,
          host=host, port=port)
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from adapters.fastapi.security import create_access_token
    from bootstrap.app import token_settings

    minutes = args.minutes or settings.access_token_expire_minutes
    print(create_access_token(args.owner or settings.owner_account_sid,
                              token_settings(settings), expires_in=timedelta(minutes=minutes)))
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from bootstrap.worker import run_worker

    event_loop.run(run_worker(settings))
    return 0


def migrate(settings: Settings, revision: str = "head") -> None:
    """Apply Alembic migrations to the configured database."""
    from bootstrap.migrator import migrate as upgrade

    upgrade(settings, revision)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    if args.config:
        from bootstrap.migrator import CONFIG_FILE

        print(CONFIG_FILE)  # for `alembic -c "$(wta migrate --config)" ...`
        return 0
    migrate(settings)
    print("database is at the latest schema revision")
    return 0


def _dlq(settings: Settings, args: argparse.Namespace) -> int:
    from application.ports.job_queue import DeadLetterStore
    from application.ports.operations import QueueStats
    from bootstrap.container import Resources, build_container

    async def run() -> int:
        container = build_container(settings)
        store = container[DeadLetterStore]
        try:
            if args.action == "list":
                dead = await store.list_dead(limit=args.limit)
                for item in dead:
                    print(f"{item.id}  {item.task}  attempts={item.attempts}  "
                          f"failed_at={item.failed_at.isoformat()}  {item.last_error}")
                total = await container[QueueStats].dead_count()
                print(f"{len(dead)} of {total} dead letter(s)")
                return 0
            if args.action == "replay":
                if not args.id:
                    print("dlq replay needs an ID", file=sys.stderr)
                    return 2
                replayed = await store.replay(args.id)
                print(f"replayed {args.id}" if replayed else f"no dead letter {args.id}")
                return 0 if replayed else 1
            count = await store.purge()
            print(f"purged {count} dead letter(s)")
            return 0
        finally:
            await container[Resources].aclose()

    return asyncio.run(run())


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from bootstrap.simulate import simulate

    return asyncio.run(simulate(settings, args.text, contact=args.from_, base_url=args.url,
                                timeout=args.timeout))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wta", description="WhatsApp assistant core")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--with-worker", action="store_true",
                       help="run a worker inside the API process (each one, with --workers)")
    serve.add_argument("--workers", type=_positive, default=1,
                       help="API processes sharing the port (default 1); use about one per core")
    serve.set_defaults(func=_serve)

    sub.add_parser("worker", help="run a standalone worker").set_defaults(func=_worker)
    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("--config", action="store_true",
                     help="print the packaged alembic.ini's path (for `alembic -c`) and exit")
    mig.set_defaults(func=_migrate)

    sim = sub.add_parser("simulate", help="post a signed inbound webhook and print the reply")
    sim.add_argument("text")
    sim.add_argument("--from", dest="from_", default=DEFAULT_CONTACT)
    sim.add_argument("--url", help="server base URL (default: http://API_HOST:API_PORT)")
    sim.add_argument("--timeout", type=float, default=10.0)
    sim.set_defaults(func=_simulate)

    dlq = sub.add_parser("dlq", help="inspect and replay dead-lettered jobs")
    dlq.add_argument("action", choices=["list", "replay", "purge"])
    dlq.add_argument("id", nargs="?")
    dlq.add_argument("--limit", type=int, default=100)
    dlq.set_defaults(func=_dlq)

    token = sub.add_parser("token", help="print a Bearer JWT for the internal API")
    token.add_argument("--owner", help="owner id (default: TWILIO_ACCOUNT_SID's owner)")
    token.add_argument("--minutes", type=int, help="lifetime (default ACCESS_TOKEN_EXPIRE_MINUTES)")
    token.set_defaults(func=_token)
    add_owner_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command != "token" and not getattr(args, "config", False):  # no backend used
            from bootstrap.extras import check_extras

            check_extras(settings)
            from bootstrap.modules import compose_for

            compose_for(settings)  # bad APP_MODULES or module settings: refused before work
    except (SettingsError, CompositionError) as exc:
        print(f"wta: {exc}", file=sys.stderr)
        return 2
    return int(args.func(settings, args))


if __name__ == "__main__":
    sys.exit(main())
