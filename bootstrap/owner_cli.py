"""``wta owner ...``: owners, their numbers, plans and keys, for operators.

Works through the identity module's ``OwnerStore`` in the container the configured
modules build (``APP_MODULES`` must include the identity module). Auth tokens are read
from standard input (a prompt on a terminal), never from arguments that shell history
and ``ps`` would keep, and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

from application.identity.store import OwnerStore
from bootstrap.settings import Settings
from domain.errors import DomainError
from domain.identity.owner import OverQuota, Plan


def add_owner_parser(sub: Any) -> None:
    owner = sub.add_parser("owner", help="manage owners (needs the identity module)")
    actions = owner.add_subparsers(dest="action", required=True)

    add = actions.add_parser("add", help="add an owner; its auth token is read from stdin")
    add.add_argument("--name", required=True)
    add.add_argument("--account-sid", required=True)
    add.add_argument("--number", action="append", default=[], help="sender number (repeat)")
    add.add_argument("--plan")
    add.add_argument("--id", dest="owner_id", help="owner id (default: the account SID)")
    actions.add_parser("list", help="every owner")
    for name, text in (("show", "one owner"), ("disable", "refuse the owner's webhooks"),
                       ("rotate-token", "store the owner's new auth token (from stdin)")):
        actions.add_parser(name, help=text).add_argument("id")
    update = actions.add_parser("update", help="change an owner's settings or numbers")
    update.add_argument("id")
    update.add_argument("--name")
    update.add_argument("--plan")
    update.add_argument("--answers", choices=["on", "off"])
    update.add_argument("--system-prompt")
    update.add_argument("--model")
    update.add_argument("--reply-language")
    update.add_argument("--temperature", type=float)
    update.add_argument("--fallback-message")
    update.add_argument("--closing-message")
    update.add_argument("--vision", choices=["on", "off", "default"],
                        help="whether the owner's model sees images (default: LLM_VISION)")
    update.add_argument("--enable", action="store_true")
    update.add_argument("--add-number", action="append", default=[])
    update.add_argument("--remove-number", action="append", default=[])
    actions.add_parser("rotate-key", help="reseal every token under the first of "
                       "IDENTITY_TOKEN_KEYS")
    plan = actions.add_parser("plan", help="create or replace a plan")
    plan.add_argument("id")
    plan.add_argument("--name", required=True)
    plan.add_argument("--quota", type=int, help="replies per month (default: no limit)")
    plan.add_argument("--over-quota", choices=[o.value for o in OverQuota],
                      default=OverQuota.SILENCE.value)
    plan.add_argument("--notice", help="sent once per month when over quota (notice)")
    plan.add_argument("--no-assistant", action="store_true")
    plan.add_argument("--no-media", action="store_true")
    owner.set_defaults(func=run_owner)


def _token() -> str:
    token = (getpass.getpass("auth token: ") if sys.stdin.isatty()
             else sys.stdin.readline()).strip()
    if not token:
        raise DomainError("an auth token is required on standard input")
    return token


def _print(value: Any) -> None:
    print(json.dumps(value, sort_keys=True))


async def _run(store: OwnerStore, args: argparse.Namespace) -> int:
    action = args.action
    if action == "add":
        view = await store.add(name=args.name, account_sid=args.account_sid,
                               auth_token=_token(), numbers=args.number, plan_id=args.plan,
                               owner_id=args.owner_id)
        _print(view.as_dict())
    elif action == "list":
        for view in await store.owners():
            _print(view.as_dict())
    elif action == "show":
        _print((await store.show(args.id)).as_dict())
    elif action == "disable":
        _print((await store.disable(args.id)).as_dict())
    elif action == "rotate-token":
        _print((await store.rotate_token(args.id, _token())).as_dict())
    elif action == "rotate-key":
        print(f"resealed {await store.reseal_all()} token(s)")
    elif action == "plan":
        saved = await store.put_plan(Plan(
            id=args.id, name=args.name, assistant=not args.no_assistant,
            media=not args.no_media, monthly_quota=args.quota,
            over_quota=OverQuota(args.over_quota), notice=args.notice))
        _print({"id": saved.id, "name": saved.name, "monthly_quota": saved.monthly_quota})
    else:  # update
        await _update(store, args)
    return 0


async def _update(store: OwnerStore, args: argparse.Namespace) -> None:
    changes: dict[str, Any] = {}
    for field in ("name", "model", "system_prompt", "reply_language", "temperature",
                  "fallback_message", "closing_message"):
        if getattr(args, field) is not None:
            changes[field] = getattr(args, field)
    if args.plan is not None:
        changes["plan_id"] = args.plan
    if args.answers is not None:
        changes["answers"] = args.answers == "on"
    if args.vision is not None:
        changes["vision"] = None if args.vision == "default" else args.vision == "on"
    if args.enable:
        changes["enabled"] = True
    if changes:
        await store.update(args.id, **changes)
    for number in args.add_number:
        await store.add_number(args.id, number)
    for number in args.remove_number:
        await store.remove_number(args.id, number)
    _print((await store.show(args.id)).as_dict())


def run_owner(settings: Settings, args: argparse.Namespace) -> int:
    from bootstrap.container import Resources, build_container

    async def run() -> int:
        container = build_container(settings)
        try:
            if OwnerStore not in container.defined_types:
                print("wta owner: add the identity module to APP_MODULES "
                      "(bootstrap.modules.identity:MODULE)", file=sys.stderr)
                return 2
            return await _run(container[OwnerStore], args)
        except (DomainError, ValueError) as error:
            # Domain errors name the owner or number, never a token.
            print(f"wta owner: {error}", file=sys.stderr)
            return 1
        finally:
            await container[Resources].aclose()

    return asyncio.run(run())
