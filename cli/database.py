"""The ledger database's schema, for the migration job and for ops:

    opendom db upgrade   migrate DATABASE_URL to this code's newest revision, under the
                         migration lock (a second one at once waits, then finds nothing to do)
    opendom db current   its revision, and whether it is this code's head (`--check`: exit 1
                         when it is not)

In production mode (OPENDOM_MODE=production) the API and the worker never migrate: they refuse
to start until `opendom db upgrade` has run, which is what the compose migration job does."""

import argparse
import json
import sys

from sqlalchemy import make_url

from config import load_settings
from ledger.db import (
    SchemaNewerThanCode,
    SchemaOutOfDate,
    SchemaRevision,
    create_schema,
    make_engine,
    schema_revision,
)

UNUSABLE_DATABASE = 1


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db = commands.add_parser("db", help="the ledger database's schema: upgrade, current")
    sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = sub.add_parser("upgrade", help="migrate DATABASE_URL to this code's head revision")
    upgrade.add_argument("--json", action="store_true", help="print JSON, for scripts")
    upgrade.set_defaults(run=_upgrade)
    current = sub.add_parser("current", help="the database's revision, and whether it is head")
    current.add_argument("--check", action="store_true", help="exit 1 unless at head")
    current.add_argument("--json", action="store_true", help="print JSON, for scripts")
    current.set_defaults(run=_current)


def _where(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _document(revision: SchemaRevision, **extra: object) -> str:
    return json.dumps(
        {
            "current": revision.current,
            "head": revision.head,
            "at_head": revision.at_head,
            "newer_than_code": revision.newer_than_code,
            **extra,
        }
    )


def _upgrade(args: argparse.Namespace) -> None:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        before = schema_revision(engine)
        create_schema(engine)
        after = schema_revision(engine)
    except (SchemaNewerThanCode, SchemaOutOfDate) as exc:
        print(f"opendom: {exc}", file=sys.stderr)
        raise SystemExit(UNUSABLE_DATABASE) from None
    finally:
        engine.dispose()
    if args.json:
        print(_document(after, previous=before.current, changed=before.current != after.current))
    elif before.current == after.current:
        print(f"{_where(settings.database_url)}: at {after.current} (head) already; nothing to do")
    else:
        print(
            f"{_where(settings.database_url)}: migrated from {before.current or 'nothing'} "
            f"to {after.current} (head)"
        )


def _current(args: argparse.Namespace) -> None:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        revision = schema_revision(engine)
    finally:
        engine.dispose()
    if args.json:
        print(_document(revision))
    elif revision.at_head:
        print(f"{revision.current} (head)")
    elif revision.current is None:
        print(f"not migrated; this OpenDOM's head is {revision.head}: run `opendom db upgrade`")
    elif revision.newer_than_code:
        print(
            f"{revision.current}: newer than this OpenDOM (head {revision.head}); run the "
            "newer version, never this one, on it"
        )
    else:
        print(
            f"{revision.current}; this OpenDOM's head is {revision.head}: run `opendom db upgrade`"
        )
    if args.check and not revision.at_head:
        raise SystemExit(UNUSABLE_DATABASE)
