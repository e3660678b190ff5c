"""API keys from the command line, straight to the ledger database of DATABASE_URL, audited as
`cli:<os user>`:

    opendom init                 the first admin key (key and signing secret, shown once)
    opendom init --if-needed     the same, or nothing (exit 0) if an admin key is active
    opendom keys create --role channel --channel web --name "web shop"
    opendom keys list
    opendom keys revoke KEY_ID
    opendom keys rotate KEY_ID   a new signing secret for a node or admin key, shown once

`--json` prints one JSON document instead, for scripts (the compose bootstrap job). A refusal
exits 2 with its reason; a database this code cannot use (not migrated in production mode,
or migrated by a newer OpenDOM) exits 1 naming what to do."""

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from config import load_settings
from domain.errors import DomainError
from ledger.db import (
    SchemaNewerThanCode,
    SchemaNotMigrated,
    SchemaOutOfDate,
    make_engine,
    prepare_schema,
    transaction,
)
from security.keys import IssuedKey
from security.roles import Role
from services import api_clients
from services.api_clients import AlreadyInitialised, ApiClientInfo

REFUSED = 2  # the request was refused (as argparse's usage errors)
UNUSABLE_DATABASE = 1


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    init = commands.add_parser(
        "init", help="create the first admin key of a deployment (shown once)"
    )
    init.add_argument(
        "--if-needed",
        action="store_true",
        help="exit 0 without a new key when an admin key is active already (re-run jobs)",
    )
    init.add_argument("--name", default="first admin", help="who holds the key")
    _json_option(init)
    init.set_defaults(run=_init)

    keys = commands.add_parser(
        "keys", help="API keys: create, list, revoke, rotate"
    ).add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="issue a key (shown once)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", required=True, help="who holds the key, e.g. 'web shop'")
    create.add_argument("--channel", help="a channel key's channel")
    create.add_argument("--node", dest="node_id", help="a node key's node (none: every node)")
    _json_option(create)
    create.set_defaults(run=_create)
    listing = keys.add_parser("list", help="every key: never its hash or secret")
    listing.add_argument("--active", action="store_true", help="leave revoked keys out")
    _json_option(listing)
    listing.set_defaults(run=_list)
    revoke = keys.add_parser("revoke", help="refuse a key from now on (again: no-op)")
    revoke.add_argument("key_id")
    _json_option(revoke)
    revoke.set_defaults(run=_revoke)
    rotate = keys.add_parser("rotate", help="a new signing secret (shown once); the old fails")
    rotate.add_argument("key_id")
    _json_option(rotate)
    rotate.set_defaults(run=_rotate)


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")


def _exit(code: int, message: str) -> None:
    print(f"opendom: {message}", file=sys.stderr)
    raise SystemExit(code)


@contextmanager
def ledger() -> Iterator[Engine]:
    """The database of DATABASE_URL, ready as the API would find it: migrated at once in
    embedded mode, only checked in production mode (the migration job migrates)."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        prepare_schema(engine, migrate=settings.migrates_at_start)
        yield engine
    except (SchemaNotMigrated, SchemaNewerThanCode, SchemaOutOfDate) as exc:
        _exit(UNUSABLE_DATABASE, str(exc))
    except DomainError as exc:
        _exit(REFUSED, str(exc))
    finally:
        engine.dispose()


def _emit(args: argparse.Namespace, document: Any, text: Callable[[], str]) -> None:
    print(json.dumps(document, default=_plain, indent=2) if args.json else text())


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _issued(issued: IssuedKey, role: Role) -> dict[str, object]:
    return {"key_id": issued.key_id, "role": role.value, **asdict(issued)}


def _issued_text(issued: IssuedKey, what: str) -> str:
    lines = [
        f"{what}: shown this once, only its hash is kept. Store it in your secret manager.",
        f"  key id          {issued.key_id}",
        f"  key             {issued.key}",
    ]
    if issued.signing_secret is not None:
        lines.append(f"  signing secret  {issued.signing_secret}")
    return "\n".join(lines)


def _init(args: argparse.Namespace) -> None:
    with ledger() as engine:
        try:
            with transaction(engine) as session:
                issued = api_clients.initialise(session, actor=actor(), name=args.name)
        except AlreadyInitialised as exc:
            if not args.if_needed:
                _exit(REFUSED, str(exc))
            # Nothing secret: the deployment's re-run bootstrap job must not fail, nor leak.
            admins = exc.admin_key_ids
            _emit(
                args,
                {"initialised": False, "admin_key_ids": admins},
                lambda: (
                    f"already initialised: an admin key is active ({', '.join(admins)}); "
                    "no key issued"
                ),
            )
            return
    _emit(
        args,
        {"initialised": True, **_issued(issued, Role.ADMIN)},
        lambda: _issued_text(issued, "OpenDOM initialised; the first admin key"),
    )


def _create(args: argparse.Namespace) -> None:
    with ledger() as engine, transaction(engine) as session:
        issued = api_clients.issue(
            session, args.name, args.role, args.channel, args.node_id, actor=actor()
        )
    _emit(
        args,
        _issued(issued, Role(args.role)),
        lambda: _issued_text(issued, f"{args.role} key for {args.name}"),
    )


def _list(args: argparse.Namespace) -> None:
    with ledger() as engine, Session(engine) as session:
        clients = api_clients.list_clients(session, include_revoked=not args.active)
    _emit(args, [_info(c) for c in clients], lambda: _table(clients))


def _info(client: ApiClientInfo) -> dict[str, object]:
    return {**asdict(client), "role": client.role.value, "active": client.active}


def _table(clients: list[ApiClientInfo]) -> str:
    if not clients:
        return "no API keys; create the first admin key with `opendom init`"
    rows = [("KEY ID", "NAME", "ROLE", "CHANNEL/NODE", "CREATED", "REVOKED")]
    for c in clients:
        scope = c.channel or c.node_id or ("every node" if c.role == Role.NODE else "-")
        rows.append(
            (
                c.key_id,
                c.name,
                c.role.value,
                scope,
                _when(c.created_at),
                _when(c.revoked_at) if c.revoked_at else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _revoke(args: argparse.Namespace) -> None:
    with ledger() as engine:
        with Session(engine) as session:
            was_active = api_clients.get_client(session, args.key_id).active
        with transaction(engine) as session:
            client = api_clients.revoke(session, args.key_id, actor())
    _emit(
        args,
        {**_info(client), "changed": was_active},
        lambda: (
            f"revoked {client.key_id} ({client.name})"
            if was_active
            else f"{client.key_id} ({client.name}) was revoked already; nothing changed"
        ),
    )


def _rotate(args: argparse.Namespace) -> None:
    with ledger() as engine, transaction(engine) as session:
        secret = api_clients.rotate_signing_secret(session, args.key_id, actor())
    _emit(
        args,
        {"key_id": args.key_id, "signing_secret": secret},
        lambda: (
            f"new signing secret for {args.key_id}: shown this once; the old one no "
            f"longer verifies\n  signing secret  {secret}"
        ),
    )
