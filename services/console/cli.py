"""`smm users create|list|set-password|disable|enable`: the console's accounts, from a shell.

Registered with the `smm` command by shared/cli.py. A password is read from standard input
(`--password-stdin`) or generated and printed once; it never goes on the command line, where
the shell history and the process list would keep it.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Sequence

from services.console.passwords import WeakPasswordError, hash_password
from services.console.storage import USERS, InvalidUserError, User, UserExistsError, UserStore
from services.console.web import utc_now
from shared.auth import ROLES, Role
from shared.mongo import create_mongo_client, service_database
from shared.settings import Settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="console users (sign-in accounts)")
    actions = users.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="add a user")
    create.add_argument("email")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--groups", default="", help="brand groups, comma-separated")
    create.add_argument("--name", default=None)
    create.add_argument("--language", choices=["en", "de"], default="en")
    create.add_argument("--time-zone", default="UTC")
    create.add_argument("--password-stdin", action="store_true")
    actions.add_parser("list", help="every user, with role, groups and state")
    password = actions.add_parser("set-password", help="a new password (ends their sessions)")
    password.add_argument("email")
    password.add_argument("--password-stdin", action="store_true")
    disable = actions.add_parser("disable", help="sign a user out now and keep them out")
    disable.add_argument("email")
    enable = actions.add_parser("enable", help="let a disabled user sign in again")
    enable.add_argument("email")


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The password and whether it was generated (and so must be shown once)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return secrets.token_urlsafe(18), True


def _line(user: User) -> str:
    groups = "*" if user.all_brands else ",".join(user.groups) or "-"
    state = "disabled" if user.disabled else "active"
    return f"{user.email}\t{user.role}\t{groups}\t{state}\t{user.language}\t{user.time_zone}"


async def create_user(
    settings: Settings,
    email: str,
    password: str,
    role: Role,
    groups: Sequence[str] = (),
    name: str | None = None,
    language: str = "en",
    time_zone: str = "UTC",
) -> User:
    """Create a console user (also used by the local stack for its first admin)."""
    client = create_mongo_client(settings, "console-cli")
    try:
        store = UserStore(service_database(client, settings))
        return await store.create(
            email.strip().lower(),
            hash_password(password),
            role,
            list(groups),
            utc_now(),
            name=name,
            language=language,
            time_zone=time_zone,
        )
    finally:
        await client.close()


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "create":
        password, generated = _password(args.password_stdin)
        groups = [g.strip() for g in args.groups.split(",") if g.strip()]
        user = await create_user(
            settings,
            args.email,
            password,
            args.role,
            groups,
            args.name,
            args.language,
            args.time_zone,
        )
        print(f"created {_line(user)}")
        if generated:
            print(f"password (shown once): {password}")
        return 0
    client = create_mongo_client(settings, "console-cli")
    try:
        store = UserStore(service_database(client, settings))
        if args.action == "list":
            for user in await store.list():
                print(_line(user))
            return 0
        email = args.email.strip().lower()
        if args.action == "set-password":
            password, generated = _password(args.password_stdin)
            changed = await store.update(email, utc_now(), password_hash=hash_password(password))
            if changed is not None and generated:
                print(f"password (shown once): {password}")
        else:
            changed = await store.update(email, utc_now(), disabled=args.action == "disable")
        if changed is None:
            print(f"no user {email} in {USERS}", file=sys.stderr)
            return 1
        print(f"{args.action}: {_line(changed)}")
        return 0
    finally:
        await client.close()


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args, Settings()))
    except (WeakPasswordError, UserExistsError, InvalidUserError, ValueError) as exc:
        print(f"refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
