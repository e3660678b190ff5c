"""Schema migrations (ledger/migrations) on real SQLite and PostgreSQL: an empty database is
migrated to exactly ledger/tables.py, a database made by `create_all` is adopted, and two
processes starting together migrate once."""

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, event, inspect, text
from sqlmodel import SQLModel, select

import ledger.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from ledger import migrations
from ledger.db import SchemaOutOfDate, create_schema, make_engine, transaction
from ledger.tables import Node, StockPosition
from tests.support.ledger_fixtures import position, seed

ROOT = Path(__file__).resolve().parents[2]


class FreshDatabase:
    """An empty database; `engine()` opens another engine on it (as another process would)."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self._engines: list[Engine] = []

    def engine(self) -> Engine:
        engine = make_engine(self.url)
        if self.schema is not None:
            schema = self.schema

            @event.listens_for(engine, "connect")
            def _search_path(dbapi_connection, _record):  # type: ignore[no-untyped-def]
                with dbapi_connection.cursor() as cursor:
                    cursor.execute(f"set search_path to {schema}")
                dbapi_connection.commit()

        self._engines.append(engine)
        return engine

    def dispose(self) -> None:
        for engine in self._engines:
            engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FreshDatabase]:
    if request.param == "sqlite":
        database = FreshDatabase(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield database
        database.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"m_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
    database = FreshDatabase(url, schema)
    yield database
    database.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"drop schema {schema} cascade"))
    admin.dispose()


def differences(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def version(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return migrations.current(connection)


def schema_snapshot(engine: Engine) -> dict:
    inspector = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
            sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
        )
        for table in sorted(inspector.get_table_names())
    }


def test_an_empty_database_migrated_to_head_has_exactly_the_tables_schema(fresh) -> None:
    """Fails when ledger/tables.py changes without a migration: write one
    (python -m ledger.migrations new "...")."""
    engine = fresh.engine()

    create_schema(engine)

    assert differences(engine) == []
    assert version(engine) == migrations.head()


def test_a_database_made_by_create_all_is_adopted_with_its_rows(fresh) -> None:
    engine = fresh.engine()
    SQLModel.metadata.create_all(engine)
    seed(engine, {"N1": 7})
    assert version(engine) is None

    create_schema(engine)

    assert version(engine) == migrations.head()
    assert position(engine, "N1") == (7, 0, 0)
    with transaction(engine) as session:
        assert [n.node_id for n in session.exec(select(Node))] == ["N1"]
        assert len(session.exec(select(StockPosition)).all()) == 1
    assert differences(engine) == []


def test_adoption_creates_the_tables_an_older_database_lacks(fresh) -> None:
    engine = fresh.engine()
    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("drop table nodestatuschange"))

    create_schema(engine)

    assert "nodestatuschange" in inspect(engine).get_table_names()
    assert version(engine) == migrations.head()
    assert differences(engine) == []


def test_a_database_older_than_the_baseline_is_refused_naming_its_missing_columns(fresh) -> None:
    engine = fresh.engine()
    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("alter table node drop column safety_stock"))

    with pytest.raises(SchemaOutOfDate, match=r"lacks node\.safety_stock; migrate it") as refused:
        create_schema(engine)

    assert refused.value.missing == ["node.safety_stock"]
    # Nothing was stamped: the refusal rolled the migration's transaction back.
    assert "alembic_version" not in inspect(engine).get_table_names()


def test_migrating_twice_changes_nothing(fresh) -> None:
    engine = fresh.engine()
    create_schema(engine)
    seed(engine, {"N1": 3})
    before = schema_snapshot(engine)

    create_schema(engine)
    create_schema(fresh.engine())

    assert schema_snapshot(engine) == before
    assert version(engine) == migrations.head()
    assert position(engine, "N1") == (3, 0, 0)


def run_together(calls: list[Callable[[], None]]) -> list[BaseException]:
    start = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        start.wait()
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_two_concurrent_migrations_of_a_fresh_database_both_succeed(fresh) -> None:
    # Two engines, as the API and the worker have: neither shares the other's pool or locks.
    engines = [fresh.engine(), fresh.engine()]

    errors = run_together([lambda e=e: create_schema(e) for e in engines])

    assert errors == []
    assert version(engines[0]) == migrations.head()
    assert differences(engines[0]) == []
    with engines[0].connect() as connection:
        rows = connection.execute(text("select version_num from alembic_version")).all()
    assert [r[0] for r in rows] == [migrations.head()]


def test_one_process_migrating_two_databases_at_once_keeps_them_apart(tmp_path: Path) -> None:
    # Alembic's `op` proxy is module-wide; ledger.migrations runs one migration at a time.
    engines = [make_engine(f"sqlite:///{tmp_path / f'ledger{i}.db'}") for i in range(4)]

    errors = run_together([lambda e=e: create_schema(e) for e in engines])

    assert errors == []
    for engine in engines:
        assert version(engine) == migrations.head()
        assert differences(engine) == []
        engine.dispose()


def test_two_processes_migrating_one_sqlite_file_at_once_both_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    program = (
        "import sys, time\n"
        "from ledger.db import create_schema, make_engine\n"
        "engine = make_engine(sys.argv[1])\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "create_schema(engine)\n"
    )
    at = str(time.time() + 2.0)  # both past their imports, then start together
    processes = [
        subprocess.Popen([sys.executable, "-c", program, url, at], cwd=ROOT, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=60), p.stderr.read().decode()) for p in processes]  # type: ignore[union-attr]

    assert results == [(0, ""), (0, "")]
    engine = make_engine(url)
    assert version(engine) == migrations.head()
    assert differences(engine) == []
    engine.dispose()
