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
from sqlmodel import SQLModel, col, select

import ledger.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from ledger import migrations
from ledger.audit import ledger_imbalances
from ledger.db import SchemaOutOfDate, create_schema, make_engine, transaction
from ledger.tables import (
    ApiClient,
    Channel,
    CheckoutHold,
    FeedSource,
    HoldLine,
    Node,
    OrderView,
    Reservation,
    Sku,
    StockMovement,
)
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


def baseline_database(engine: Engine, versioned: bool) -> None:
    """The schema of revision 0001: what `create_all` made before migrations (unversioned), or a
    database a release with only the baseline migrated (versioned)."""
    with engine.begin() as connection:
        migrations.upgrade(connection, migrations.BASELINE)
        if not versioned:
            connection.execute(text("drop table alembic_version"))


BASELINE_ROWS = [
    "insert into sku (sku, name, unit_price) values ('TEE', 'Tee', 19.0)",
    "insert into node (node_id, name, node_type, lat, lon, can_ship, can_pickup, daily_capacity,"
    " priority, active, status, system_url) values"
    " ('N1', 'Reno', 'warehouse', 39.5, -119.8, true, false, 500, 50, true, 'up', 'http://wms')",
    "insert into stockposition (node_id, sku, on_hand, reserved, held, safety_stock, updated_at)"
    " values ('N1', 'TEE', 7, 2, 1, 0, '2026-11-30 10:00:00')",
    "insert into stockmovement (node_id, sku, kind, d_on_hand, d_reserved, d_held, cause, at)"
    " values ('N1', 'TEE', 'snapshot', 7, 0, 0, 'erp:1', '2026-11-30 09:00:00'),"
    " ('N1', 'TEE', 'reservation', 0, 2, 0, 'order web:1', '2026-11-30 09:30:00'),"
    " ('N1', 'TEE', 'hold', 0, 0, 1, 'hold H1', '2026-11-30 09:40:00')",
    "insert into reservation (order_id, line_no, node_id, sku, quantity, shipment_id, status,"
    " updated_at) values ('web:1', 1, 'N1', 'TEE', 2, 'web:1/N1', 'active', '2026-11-30 09:30:00')",
    "insert into checkouthold (hold_id, channel, status, expires_at, created_at) values"
    " ('H1', 'web', 'active', '2026-11-30 10:10:00', '2026-11-30 09:40:00')",
    "insert into holdline (hold_id, line_no, node_id, sku, quantity) values"
    " ('H1', 1, 'N1', 'TEE', 1)",
    "insert into orderview (order_id, channel, external_id, order_type, priority, status, version,"
    " document, created_at, updated_at) values ('web:1', 'web', '1', 'dtc', 5, 'RELEASED', 3,"
    " '{\"status\": \"RELEASED\"}', '2026-11-30 09:30:00', '2026-11-30 09:31:00')",
    "insert into apiclient (key_id, name, role, key_hash, active, created_at) values"
    " ('k1', 'web shop', 'channel', 'h', true, '2026-11-30 08:00:00')",
    "insert into feedsource (source, url, enabled) values ('erp', 'http://erp', true)",
]


def fill_baseline(engine: Engine) -> None:
    with engine.begin() as connection:
        for statement in BASELINE_ROWS:
            connection.execute(text(statement))


def assert_baseline_rows_kept(engine: Engine) -> None:
    with transaction(engine) as session:
        node = session.get(Node, "N1")
        assert node is not None and (node.name, node.daily_capacity) == ("Reno", 500)
        assert (node.enabled, node.working_days, node.timezone) == (True, [0, 1, 2, 3, 4], "UTC")
        assert node.connector_kind == "opendom-http"
        sku = session.get(Sku, "TEE")
        assert sku is not None and (sku.unit_price, sku.active, sku.ship_alone) == (
            19.0,
            True,
            False,
        )
        assert [(m.kind, m.d_on_hand, m.d_reserved, m.d_held) for m in session.exec(
            select(StockMovement).order_by(col(StockMovement.id)))] == [
            ("snapshot", 7, 0, 0), ("reservation", 0, 2, 0), ("hold", 0, 0, 1)]  # fmt: skip
        reservation = session.exec(select(Reservation)).one()
        assert (reservation.order_id, reservation.quantity, reservation.status) == (
            "web:1", 2, "active")  # fmt: skip
        hold = session.get(CheckoutHold, "H1")
        assert hold is not None and hold.status == "active"
        assert [(h.node_id, h.quantity) for h in session.exec(select(HoldLine))] == [("N1", 1)]
        order = session.get(OrderView, "web:1")
        assert order is not None and (order.version, order.document) == (3, {"status": "RELEASED"})
        client = session.get(ApiClient, "k1")
        assert client is not None and (client.active, client.revoked_at) == (True, None)
        feed = session.get(FeedSource, "erp")
        assert feed is not None and feed.kind == "stock"
        assert ledger_imbalances(session) == []
    assert position(engine, "N1") == (7, 2, 1)


def test_a_baseline_database_filled_with_data_upgrades_to_head_losing_nothing(fresh) -> None:
    engine = fresh.engine()
    baseline_database(engine, versioned=True)
    fill_baseline(engine)

    create_schema(engine)

    assert version(engine) == migrations.head()
    assert differences(engine) == []
    assert_baseline_rows_kept(engine)


def test_a_database_made_by_create_all_is_adopted_with_its_rows(fresh) -> None:
    engine = fresh.engine()
    baseline_database(engine, versioned=False)
    fill_baseline(engine)
    assert version(engine) is None

    create_schema(engine)

    assert version(engine) == migrations.head()
    assert differences(engine) == []
    assert_baseline_rows_kept(engine)


def test_adoption_creates_the_tables_an_older_database_lacks(fresh) -> None:
    engine = fresh.engine()
    baseline_database(engine, versioned=False)
    with engine.begin() as connection:
        connection.execute(text("drop table nodestatuschange"))

    create_schema(engine)

    assert "nodestatuschange" in inspect(engine).get_table_names()
    assert version(engine) == migrations.head()
    assert differences(engine) == []


def test_a_database_older_than_the_baseline_is_refused_naming_its_missing_columns(fresh) -> None:
    engine = fresh.engine()
    baseline_database(engine, versioned=False)
    with engine.begin() as connection:
        connection.execute(text("alter table node drop column safety_stock"))

    with pytest.raises(SchemaOutOfDate, match=r"lacks node\.safety_stock; migrate it") as refused:
        create_schema(engine)

    assert refused.value.missing == ["node.safety_stock"]
    # Nothing was written: the refusal rolled the migration's transaction back.
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


def test_a_0002_database_upgrades_with_holds_and_channels_kept_and_no_promise_yet(fresh) -> None:
    engine = fresh.engine()
    with engine.begin() as connection:
        migrations.upgrade(connection, "0002")
        connection.execute(
            text(
                "insert into checkouthold (hold_id, channel, status, expires_at, created_at)"
                " values ('H1', 'web', 'active', '2026-11-30 10:10:00', '2026-11-30 09:40:00')"
            )
        )
        connection.execute(
            text(
                "insert into channel (channel, name, channel_type, fulfilment_policy, active,"
                " updated_at) values ('web', 'Web', 'dtc', 'ship_partial', true,"
                " '2026-11-30 08:00:00')"
            )
        )

    create_schema(engine)

    assert version(engine) == migrations.head()
    with transaction(engine) as session:
        hold = session.get(CheckoutHold, "H1")
        assert hold is not None and hold.channel == "web"
        assert (hold.option, hold.promised_date) == (None, None)
        channel = session.get(Channel, "web")
        assert channel is not None and channel.name == "Web"
        assert channel.inventory_aware is False


def test_a_0003_database_upgrades_to_bid_prices_with_its_channels_kept_and_no_run_yet(
    fresh,
) -> None:
    # Local imports: the module's import block is shared with other helpers' appended tests.
    from datetime import UTC, datetime

    from ledger.tables import BidPrice, BidPriceRun

    engine = fresh.engine()
    with engine.begin() as connection:
        migrations.upgrade(connection, "0003")
        connection.execute(
            text(
                "insert into channel (channel, name, channel_type, fulfilment_policy,"
                " inventory_aware, active, updated_at) values ('web', 'Web', 'dtc',"
                " 'ship_partial', true, true, '2026-11-30 08:00:00')"
            )
        )

    create_schema(engine)

    assert version(engine) == migrations.head()
    with transaction(engine) as session:
        channel = session.get(Channel, "web")
        assert channel is not None and channel.inventory_aware is True
        assert session.exec(select(BidPriceRun)).all() == []
        session.add(
            BidPriceRun(
                run_id="r1",
                window_start=datetime(2026, 11, 1, tzinfo=UTC),
                window_end=datetime(2026, 11, 29, tzinfo=UTC),
            )
        )
        session.flush()
        session.add(BidPrice(run_id="r1", node_id="dc", sku="tee", price=1.5))
    with transaction(engine) as session:
        prices = session.exec(select(BidPrice)).all()
        assert [(p.node_id, p.sku, p.price) for p in prices] == [("dc", "tee", 1.5)]


def test_a_0004_database_upgrades_to_incoming_stock_with_its_positions_and_movements_at_zero(
    fresh,
) -> None:
    # Local imports: the module's import block is shared with other helpers' appended tests.
    from ledger.tables import IncomingLine, StockPosition

    engine = fresh.engine()
    with engine.begin() as connection:
        migrations.upgrade(connection, "0004")
        # Raw SQL: the tables' models already have the columns this revision adds.
        for statement in (
            "insert into sku (sku, name, unit_price, ship_alone, oversize, active, updated_at)"
            " values ('TEE', 'Tee', 0, false, false, true, '2026-11-30 08:00:00')",
            "insert into node (node_id, name, node_type, lat, lon, can_ship, can_pickup,"
            " daily_capacity, priority, active, status, system_url, connector_kind, enabled,"
            " can_ship_to_store, working_days, holidays, cutoff_time, timezone,"
            " processing_days, updated_at) values ('N1', 'N1', 'warehouse', 0, 0, true, false,"
            " 1000, 100, true, 'up', 'http://sim', 'simulator', true, false, '[0]', '[]',"
            " '14:00', 'UTC', 0, '2026-11-30 08:00:00')",
            "insert into stockposition (node_id, sku, on_hand, reserved, held, safety_stock,"
            " updated_at) values ('N1', 'TEE', 7, 0, 0, 0, '2026-11-30 08:00:00')",
            "insert into stockmovement (node_id, sku, kind, d_on_hand, d_reserved, d_held,"
            " cause, at) values ('N1', 'TEE', 'snapshot', 7, 0, 0, 'opening balance',"
            " '2026-11-30 08:00:00')",
        ):
            connection.execute(text(statement))

    create_schema(engine)

    assert version(engine) == migrations.head()
    with transaction(engine) as session:
        stored = session.exec(select(StockPosition)).one()
        assert (stored.on_hand, stored.incoming) == (7, 0)
        assert [m.d_incoming for m in session.exec(select(StockMovement))] == [0]
        assert session.exec(select(IncomingLine)).all() == []
        assert ledger_imbalances(session) == []


def test_a_0005_database_upgrades_with_its_channels_waiting_three_days_then_asking(fresh) -> None:
    engine = fresh.engine()
    with engine.begin() as connection:
        migrations.upgrade(connection, "0005")
        # Raw SQL: the table's model already has the columns this revision adds.
        connection.execute(
            text(
                "insert into channel (channel, name, channel_type, fulfilment_policy,"
                " inventory_aware, active, updated_at) values ('b2b', 'B2B', 'b2b',"
                " 'ship_complete', false, true, '2026-11-30 08:00:00')"
            )
        )

    create_schema(engine)

    assert version(engine) == migrations.head()
    with transaction(engine) as session:
        channel = session.get(Channel, "b2b")
        assert channel is not None and channel.fulfilment_policy == "ship_complete"
        assert (channel.ship_complete_wait_seconds, channel.ship_complete_then) == (
            3 * 24 * 3600.0,
            "ask",
        )
        channel.ship_complete_then = "split"
    with transaction(engine) as session:
        assert session.get(Channel, "b2b").ship_complete_then == "split"


def test_a_0006_database_upgrades_with_its_channels_not_allowing_preorders(fresh) -> None:
    engine = fresh.engine()
    with engine.begin() as connection:
        migrations.upgrade(connection, "0006")
        # Raw SQL: the table's model already has the column this revision adds.
        connection.execute(
            text(
                "insert into channel (channel, name, channel_type, fulfilment_policy,"
                " ship_complete_wait_seconds, ship_complete_then, inventory_aware, active,"
                " updated_at) values ('web', 'Web', 'dtc', 'ship_partial', 259200.0, 'ask',"
                " false, true, '2026-11-30 08:00:00')"
            )
        )

    create_schema(engine)

    assert version(engine) == migrations.head()
    with transaction(engine) as session:
        channel = session.get(Channel, "web")
        assert channel is not None and channel.allow_preorders is False
        channel.allow_preorders = True
    with transaction(engine) as session:
        assert session.get(Channel, "web").allow_preorders is True
