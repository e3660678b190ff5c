"""services.configuration on real SQLite and PostgreSQL: nodes, channels with their pools and
carrier services applied by id, idempotently, audited field by field, and refused whole."""

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from domain.configuration import Applied, CarrierServiceSpec, ChannelSpec, NodeSpec
from domain.errors import UnknownReference
from domain.geo import GeoPoint
from domain.node_status import NodeStatus
from domain.orders import DeliveryMethod, OrderLine
from domain.sla import uniform_sla_policy
from ledger import stock
from ledger.config_audit import changes_of
from ledger.db import transaction
from ledger.tables import CarrierServiceRow, Channel, ChannelPool, Node, Sku, StockPosition
from services import allocation, configuration, network, sourcing_inputs
from services.configuration import DuplicateSpec, UnknownPoolNodes, ValueTooLong

ACTOR = "cli:tester"


def _node(node_id: str = "WH-LYON", **fields: Any) -> NodeSpec:
    values: dict[str, Any] = {
        "node_id": node_id,
        "name": f"Warehouse {node_id}",
        "node_type": "warehouse",
        "lat": 45.7,
        "lon": 4.9,
        "connector_kind": "simulator",
        "timezone": "Europe/Paris",
    }
    return NodeSpec.model_validate(values | fields)


def _apply_nodes(engine: Engine, *specs: NodeSpec, actor: str = ACTOR):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return configuration.apply_nodes(session, specs, actor)


def _row(engine: Engine, node_id: str) -> Node:
    with Session(engine) as session:
        row = session.get(Node, node_id)
        assert row is not None
        return row


def _audit(engine: Engine, entity: str, entity_id: str) -> list[tuple[str, str, dict]]:
    with Session(engine) as session:
        return [(c.action, c.actor, c.changes) for c in changes_of(session, entity, entity_id)]


def _candidates(engine: Engine, sku: str = "TEE") -> list[str]:
    with Session(engine) as session:
        return [c.node_id for c in stock.candidate_nodes(session, [sku])]


def _stock(engine: Engine, node_id: str, units: int, sku: str = "TEE") -> None:
    with transaction(engine) as session:
        if session.get(Sku, sku) is None:
            session.add(Sku(sku=sku, name=sku))
            session.flush()
        stock.open_position(session, node_id, sku, units)


def test_applying_the_same_node_twice_creates_it_once_and_audits_once(
    ledger_engine: Engine,
) -> None:
    spec = _node(holidays=[date(2026, 12, 25), date(2026, 7, 14)])

    first = _apply_nodes(ledger_engine, spec)
    again = _apply_nodes(ledger_engine, spec)

    assert (first.created, first.updated, first.unchanged) == (["WH-LYON"], [], 0)
    assert (again.created, again.updated, again.unchanged, again.changed) == ([], [], 1, False)
    row = _row(ledger_engine, "WH-LYON")
    assert (row.status, row.active, row.enabled, row.system_url) == ("up", True, True, "")
    assert row.holidays == ["2026-07-14", "2026-12-25"]
    [(action, actor, changes)] = _audit(ledger_engine, "node", "WH-LYON")
    assert (action, actor) == ("create", ACTOR)
    assert changes["timezone"] == [None, "Europe/Paris"]
    assert configuration.node_spec(row) == spec.model_copy(
        update={"holidays": [date(2026, 7, 14), date(2026, 12, 25)]}
    )


def test_an_update_records_before_and_after_of_only_the_changed_fields(
    ledger_engine: Engine,
) -> None:
    _apply_nodes(ledger_engine, _node())

    applied = _apply_nodes(
        ledger_engine, _node(cutoff_time="16:30", priority=40), actor="key:abc ops desk"
    )

    assert applied.updated == ["WH-LYON"]
    latest = _audit(ledger_engine, "node", "WH-LYON")[0]
    assert latest == (
        "update",
        "key:abc ops desk",
        {"cutoff_time": ["14:00", "16:30"], "priority": [100, 40]},
    )
    assert _row(ledger_engine, "WH-LYON").cutoff_time == "16:30"


def test_a_batch_naming_a_node_twice_is_refused_and_writes_nothing(ledger_engine: Engine) -> None:
    with pytest.raises(DuplicateSpec, match="node WH-B is given more than once"):
        _apply_nodes(ledger_engine, _node("WH-A"), _node("WH-B"), _node("WH-B", priority=3))

    with Session(ledger_engine) as session:
        assert session.exec(select(Node)).all() == []
        assert changes_of(session) == []


def test_a_deactivated_node_leaves_sourcing_and_coming_up_does_not_bring_it_back(
    ledger_engine: Engine,
) -> None:
    _apply_nodes(ledger_engine, _node("WH-A"), _node("WH-B"))
    _stock(ledger_engine, "WH-A", 5)
    _stock(ledger_engine, "WH-B", 5)

    with transaction(ledger_engine) as session:
        first = configuration.deactivate_node(session, "WH-A", "lease ended", ACTOR)
    with transaction(ledger_engine) as session:
        second = configuration.deactivate_node(session, "WH-A", "again", ACTOR)
    network.change_node_status(ledger_engine, "WH-A", NodeStatus.UP, "back from maintenance")

    assert (first, second) == (True, False)
    assert _candidates(ledger_engine) == ["WH-B"]
    row = _row(ledger_engine, "WH-A")
    assert (row.enabled, row.active, row.status) == (False, False, "up")
    action, _, changes = _audit(ledger_engine, "node", "WH-A")[0]
    assert action == "deactivate"
    assert changes == {
        "enabled": [True, False],
        "reason": [None, "lease ended"],
        "active": [True, False],
    }


def test_re_enabling_a_node_puts_it_back_only_if_it_is_up(ledger_engine: Engine) -> None:
    _apply_nodes(ledger_engine, _node("WH-A"), _node("WH-B"))
    _stock(ledger_engine, "WH-A", 5)
    _stock(ledger_engine, "WH-B", 5)
    for node_id in ("WH-A", "WH-B"):
        with transaction(ledger_engine) as session:
            configuration.deactivate_node(session, node_id, "audit", ACTOR)
    network.change_node_status(ledger_engine, "WH-B", NodeStatus.DOWN, "flooded")

    applied = _apply_nodes(ledger_engine, _node("WH-A"), _node("WH-B"))

    assert applied.updated == ["WH-A", "WH-B"]
    assert _candidates(ledger_engine) == ["WH-A"]
    assert _audit(ledger_engine, "node", "WH-A")[0][2] == {
        "enabled": [False, True],
        "active": [False, True],
    }
    assert _audit(ledger_engine, "node", "WH-B")[0][2] == {"enabled": [False, True]}


def test_changing_a_nodes_safety_stock_refreshes_its_positions(ledger_engine: Engine) -> None:
    _apply_nodes(ledger_engine, _node("WH-A"))
    _stock(ledger_engine, "WH-A", 10)

    _apply_nodes(ledger_engine, _node("WH-A", safety_stock=3))

    with Session(ledger_engine) as session:
        [position] = session.exec(select(StockPosition)).all()
        assert position.safety_stock == 3


def test_a_channel_and_its_pool_are_one_audited_entity(ledger_engine: Engine) -> None:
    _apply_nodes(ledger_engine, _node("WH-A"), _node("ST-B", node_type="store"))
    spec = ChannelSpec(
        channel="web-eu",
        name="Web shop",
        channel_type="dtc",
        default_scenario="fastest",
        pool_node_ids=["ST-B", "WH-A"],
        share_by_node_type={"store": 0.5},
    )

    with transaction(ledger_engine) as session:
        created = configuration.apply_channels(session, [spec], ACTOR)
        again = configuration.apply_channels(session, [spec], ACTOR)

    assert (created.created, again.unchanged) == (["web-eu"], 1)
    with Session(ledger_engine) as session:
        channel, pool = session.get(Channel, "web-eu"), session.get(ChannelPool, "web-eu")
        assert channel is not None and pool is not None
        assert (pool.node_ids, pool.share_by_node_type) == (["ST-B", "WH-A"], {"store": 0.5})
        assert configuration.channel_spec(channel, pool) == spec
        [(action, _, changes)] = [
            (a, b, c) for a, b, c in _audit(ledger_engine, "channel", "web-eu")
        ]
    assert action == "create" and changes["pool_node_ids"] == [None, ["ST-B", "WH-A"]]


def test_a_pool_naming_nothing_is_no_pool_row(ledger_engine: Engine) -> None:
    _apply_nodes(ledger_engine, _node("WH-A"))
    pooled = ChannelSpec(channel="b2b", name="B2B", channel_type="b2b", pool_node_ids=["WH-A"])
    everyone = pooled.model_copy(update={"pool_node_ids": None})

    with transaction(ledger_engine) as session:
        configuration.apply_channels(session, [pooled], ACTOR)
    with transaction(ledger_engine) as session:
        applied = configuration.apply_channels(session, [everyone], ACTOR)

    assert applied.updated == ["b2b"]
    with Session(ledger_engine) as session:
        assert session.get(ChannelPool, "b2b") is None
        channel = session.get(Channel, "b2b")
        assert channel is not None and configuration.channel_spec(channel, None) == everyone
    assert _audit(ledger_engine, "channel", "b2b")[0][2] == {"pool_node_ids": [["WH-A"], None]}


def test_a_pool_naming_unknown_nodes_is_refused_naming_them(ledger_engine: Engine) -> None:
    _apply_nodes(ledger_engine, _node("WH-A"))
    spec = ChannelSpec(
        channel="b2b", name="B2B", channel_type="b2b", pool_node_ids=["WH-A", "GHOST", "ALSO"]
    )

    with pytest.raises(UnknownPoolNodes) as refused, transaction(ledger_engine) as session:
        configuration.apply_channels(session, [spec], ACTOR)

    assert isinstance(refused.value, UnknownReference)
    assert (refused.value.channel, refused.value.values) == ("b2b", ["ALSO", "GHOST"])
    assert str(refused.value) == "channel b2b: pool_node_ids: unknown ALSO, GHOST"
    with Session(ledger_engine) as session:
        assert session.get(Channel, "b2b") is None


def test_a_channel_id_longer_than_its_column_is_refused_by_name(ledger_engine: Engine) -> None:
    # The spec refuses it; the service's own check stays for a spec built without validation.
    with pytest.raises(ValidationError, match=r"channel\n  String should have at most 40"):
        ChannelSpec(channel="c" * 41, name="Too long", channel_type="dtc")
    spec = ChannelSpec.model_construct(
        **{**ChannelSpec(channel="c", name="Too long", channel_type="dtc").model_dump(),
           "channel": "c" * 41}
    )  # fmt: skip

    with (
        pytest.raises(ValueTooLong, match="channel: at most 40 characters"),
        transaction(ledger_engine) as session,
    ):
        configuration.apply_channels(session, [spec], ACTOR)


def test_carrier_services_apply_by_carrier_and_service(ledger_engine: Engine) -> None:
    bands = [{"max_km": 300, "days": 1}, {"max_km": 1e9, "days": 3}]
    classic = CarrierServiceSpec(carrier="DPD", service="classic", name="DPD", transit_bands=bands)
    express = classic.model_copy(update={"service": "express"})
    slower = CarrierServiceSpec.model_validate(
        classic.model_dump() | {"transit_bands": [{"max_km": 300, "days": 2}]}
    )

    with transaction(ledger_engine) as session:
        created = configuration.apply_carrier_services(session, [classic, express], ACTOR)
    with transaction(ledger_engine) as session:
        updated = configuration.apply_carrier_services(session, [slower, express], ACTOR)

    assert created.created == ["DPD/classic", "DPD/express"]
    assert (updated.updated, updated.unchanged) == (["DPD/classic"], 1)
    with Session(ledger_engine) as session:
        row = session.get(CarrierServiceRow, ("DPD", "classic"))
        assert row is not None and row.transit_bands == [{"max_km": 300.0, "days": 2}]
        assert configuration.carrier_service_spec(row) == slower
    assert _audit(ledger_engine, "carrier", "DPD/classic")[0][2] == {
        "transit_bands": [
            [{"max_km": 300.0, "days": 1}, {"max_km": 1e9, "days": 3}],
            [{"max_km": 300.0, "days": 2}],
        ]
    }


def test_a_thousand_nodes_take_a_handful_of_statements_on_the_node_table(
    ledger_engine: Engine,
) -> None:
    specs = [_node(f"N-{i:04d}", priority=i % 1000) for i in range(1000)]
    statements: list[str] = []

    @event.listens_for(ledger_engine, "before_cursor_execute")
    def _count(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
        if " node " in f" {statement.replace(chr(10), ' ')} ":
            statements.append(statement)

    created = _apply_nodes(ledger_engine, *specs)
    on_create = len(statements)
    statements.clear()
    again = _apply_nodes(ledger_engine, *specs)
    on_again = len(statements)
    statements.clear()
    renamed = [s.model_copy(update={"name": f"Renamed {s.node_id}"}) for s in specs]
    updated = _apply_nodes(ledger_engine, *renamed)
    event.remove(ledger_engine, "before_cursor_execute", _count)

    assert (len(created.created), again.unchanged, len(updated.updated)) == (1000, 1000, 1000)
    # One read of the existing rows and one batched INSERT or UPDATE, whatever the batch's size.
    assert (on_create, on_again, len(statements)) == (2, 1, 2), statements
    with Session(ledger_engine) as session:
        assert len(changes_of(session, "node", limit=5000)) == 2000


def test_allocation_promises_after_the_nodes_holidays(ledger_engine: Engine) -> None:
    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date()
    holidays = [today + timedelta(days=n) for n in range(10)]
    every_day = [0, 1, 2, 3, 4, 5, 6]
    _apply_nodes(ledger_engine, _node("WH-A", working_days=every_day, holidays=holidays))
    _stock(ledger_engine, "WH-A", 5)
    request = allocation.AllocationRequest(
        order_id="o-holiday",
        lines=[OrderLine(line_no=1, sku="TEE", quantity=1)],
        destination=GeoPoint(lat=45.75, lon=4.85),
        delivery_method=DeliveryMethod.HOME,
    )

    result = allocation.allocate(ledger_engine, uniform_sla_policy(60), request)

    [promised] = re.findall(r"by (\d{4}-\d{2}-\d{2})", result.explanation)
    # The node works no day before the holidays end: it ships the day after at the earliest.
    assert date.fromisoformat(promised) > holidays[-1], result.explanation
    assert [s.node_id for s in result.shipments] == ["WH-A"]


def test_allocation_reads_cut_offs_on_the_nodes_clock_when_they_share_one(
    ledger_engine: Engine,
) -> None:
    _apply_nodes(
        ledger_engine,
        _node("PARIS", timezone="Europe/Paris"),
        _node("BERLIN", timezone="Europe/Berlin"),
        _node("NEW-YORK", timezone="America/New_York"),
    )
    for node_id in ("PARIS", "BERLIN", "NEW-YORK"):
        _stock(ledger_engine, node_id, 1)
    now = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)

    with Session(ledger_engine) as session:
        candidates = stock.candidate_nodes(session, ["TEE"])
        _, european = sourcing_inputs.with_calendars(
            session, [c for c in candidates if c.node_id != "NEW-YORK"], now
        )
        _, mixed = sourcing_inputs.with_calendars(session, candidates, now)

    assert len(candidates) == 3
    assert (european, european.utcoffset()) == (now, timedelta(hours=2))  # the same instant
    assert mixed.utcoffset() == timedelta(0)


def test_two_writers_of_the_same_new_node_at_once_both_succeed(ledger_engine: Engine) -> None:
    """A retried PUT racing its original: one creates, the other finds it unchanged (on
    PostgreSQL both read "absent" first unless they take turns)."""
    import threading

    start = threading.Barrier(2)
    outcomes: list[Applied | BaseException] = []

    def write() -> None:
        try:
            start.wait(timeout=10)
            with transaction(ledger_engine) as session:
                outcomes.append(configuration.apply_nodes(session, [_node("WH-RACE")], ACTOR))
        except BaseException as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert sorted((o.created, o.unchanged) for o in outcomes) == [([], 1), (["WH-RACE"], 0)]
