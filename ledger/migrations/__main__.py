"""`python -m ledger.migrations new "message"`: autogenerate the next revision.

A scratch SQLite database is migrated to head, then compared with ledger/tables.py; the
difference becomes versions/NNNN_message.py. Read it, tidy it, and write its upgrade test."""

import argparse
import re
import tempfile
from pathlib import Path

from alembic import command

from ledger import migrations


def _next_id() -> str:
    numbers = [
        int(m.group(1))
        for p in (migrations.HERE / "versions").glob("*.py")
        if (m := re.match(r"(\d{4})_", p.name))
    ]
    return f"{max(numbers, default=0) + 1:04d}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ledger.migrations")
    sub = parser.add_subparsers(dest="cmd", required=True)
    new = sub.add_parser("new", help="autogenerate the next revision from ledger/tables.py")
    new.add_argument("message")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        cfg = migrations.config(url=f"sqlite:///{Path(scratch) / 'scratch.db'}")
        command.upgrade(cfg, "head")
        command.revision(cfg, message=args.message, autogenerate=True, rev_id=_next_id())


if __name__ == "__main__":
    main()
