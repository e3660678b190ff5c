"""OpenDOM's schema migrations (Alembic), configured in code so an installed package finds them.

`ledger.db.create_schema` migrates a database to head with `upgrade` below, under its lock. The rule for a change to ledger/tables.py is in README.md beside this file:

    python -m ledger.migrations new "what changed"
"""

import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlmodel import SQLModel

HERE = Path(__file__).parent
_ONE_AT_A_TIME = threading.RLock()
BASELINE = "0001"  # the schema `metadata.create_all` made before migrations (adopted, see db)


def config(connection: Connection | None = None, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _load() -> ScriptDirectory:
    revisions = ScriptDirectory.from_config(config())
    revisions.get_heads()  # reads the revision files now, once
    return revisions


def script() -> ScriptDirectory:
    """The revisions, read once per process (create_schema runs once per test database)."""
    with _ONE_AT_A_TIME:
        return _load()


def head() -> str:
    heads = script().get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads ({heads}); merge them")
    return heads[0]


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade on `connection`, inside its transaction; the caller commits."""
    revisions = script()
    _run(connection, lambda current, _context: revisions._upgrade_revs(revision, current))


def stamp(connection: Connection, revision: str) -> None:
    """Record `revision` as the database's version without running it (adoption)."""
    revisions = script()
    _run(connection, lambda current, _context: revisions._stamp_revs(revision, current))


def _run(connection: Connection, step: Callable[..., Any]) -> None:
    """What `alembic upgrade`/`stamp` do through env.py, without reading env.py and the
    revision files again each time (the ScriptDirectory is cached). One at a time per process:
    Alembic's `op` and `context` are module-wide proxies, so two threads migrating two databases
    at once would run each other's operations. Callers already hold their database's migration
    lock (ledger.db), which is always taken first, so the two locks cannot deadlock."""
    with _ONE_AT_A_TIME, EnvironmentContext(config(connection), script(), fn=step) as environment:
        environment.configure(connection=connection, target_metadata=SQLModel.metadata)
        with environment.begin_transaction():
            environment.run_migrations()


@cache
def baseline_columns() -> dict[str, list[str]]:
    """Each table of the baseline revision and its columns, read off a scratch in-memory SQLite
    database migrated to it: what a database made before migrations must have to be adopted."""
    from sqlalchemy import create_engine, inspect

    scratch = create_engine("sqlite://")
    with scratch.begin() as connection:
        upgrade(connection, BASELINE)
        inspector = inspect(connection)
        tables = {
            table: [c["name"] for c in inspector.get_columns(table)]
            for table in inspector.get_table_names()
            if table != "alembic_version"
        }
    scratch.dispose()
    return tables
