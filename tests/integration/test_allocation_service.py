"""services.allocation on real SQLite and PostgreSQL: idempotent allocation, backorders, hold
conversion, and a release that records the node's incident once."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from domain.geo import GeoPoint
from domain.lifecycle import IncidentKind
from domain.orders import DeliveryMethod, OrderLine
from domain.sla import uniform_sla_policy
from ledger import holds
from ledger.db import transaction
from ledger.tables import NodeIncident as IncidentRow
from services import allocation
from services.allocation import AllocationRequest, NodeIncident
from tests.support.ledger_fixtures import position, seed

SLA = uniform_sla_policy(60)


def _request(order_id: str, quantity: int, hold_id: str | None = None) -> AllocationRequest:
    return AllocationRequest(
        order_id=order_id,
        lines=[OrderLine(line_no=1, sku="TEE", quantity=quantity)],
        destination=GeoPoint(lat=0, lon=0),
        delivery_method=DeliveryMethod.HOME,
        hold_id=hold_id,
    )


def test_allocating_the_same_order_again_returns_what_was_reserved(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 10})

    first = allocation.allocate(ledger_engine, SLA, _request("o-1", 3))
    again = allocation.allocate(ledger_engine, SLA, _request("o-1", 3))

    assert [(s.shipment_id, s.node_id) for s in first.shipments] == [("o-1-S1", "WH-A")]
    assert again.shipments == first.shipments
    assert again.explanation == "allocation already recorded"
    assert position(ledger_engine, "WH-A") == (10, 3, 0)  # reserved once


def test_an_order_no_node_can_serve_whole_is_backordered_naming_its_lines(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 2})

    result = allocation.allocate(ledger_engine, SLA, _request("o-1", 5))

    assert result.backordered and result.shipments == []
    assert "line 1 (5 x TEE)" in result.explanation
    assert position(ledger_engine, "WH-A") == (2, 0, 0)


def test_a_matching_checkout_hold_becomes_the_orders_reservation(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 10})
    with transaction(ledger_engine) as session:
        line = holds.HoldRequestLine(1, "WH-A", "TEE", 4)
        holds.place_hold(session, "H-1", "web", [line], datetime.now(UTC) + timedelta(minutes=5))

    result = allocation.allocate(ledger_engine, SLA, _request("o-1", 4, hold_id="H-1"))

    assert result.explanation == "converted checkout hold H-1 at WH-A"
    assert [s.shipment_id for s in result.shipments] == ["o-1-S1"]
    assert position(ledger_engine, "WH-A") == (10, 4, 0)


def test_a_hold_that_does_not_match_the_order_is_given_back_and_sourced_afresh(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 10})
    with transaction(ledger_engine) as session:
        line = holds.HoldRequestLine(1, "WH-A", "TEE", 2)
        holds.place_hold(session, "H-1", "web", [line], datetime.now(UTC) + timedelta(minutes=5))

    result = allocation.allocate(ledger_engine, SLA, _request("o-1", 9, hold_id="H-1"))

    assert not result.backordered
    assert not result.explanation.startswith("converted")
    assert position(ledger_engine, "WH-A") == (10, 9, 0)  # the hold's 2 went back first


def test_an_expired_hold_is_logged_to_the_callers_logger_and_sourced_afresh(
    ledger_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    seed(ledger_engine, {"WH-A": 10})
    with transaction(ledger_engine) as session:
        line = holds.HoldRequestLine(1, "WH-A", "TEE", 4)
        holds.place_hold(session, "H-1", "web", [line], datetime.now(UTC) - timedelta(seconds=1))
    callers = logging.LoggerAdapter(logging.getLogger("tests.activity"), {})

    with caplog.at_level(logging.INFO, logger="tests.activity"):
        result = allocation.allocate(ledger_engine, SLA, _request("o-1", 4, "H-1"), callers)

    assert [r.name for r in caplog.records] == ["tests.activity"]
    assert "hold not used for o-1" in caplog.records[0].getMessage()
    assert [s.node_id for s in result.shipments] == ["WH-A"]


def test_a_retried_release_counts_the_nodes_incident_once(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 10})
    allocation.allocate(ledger_engine, SLA, _request("o-1", 3))
    incident = NodeIncident("WH-A", "o-1-S1", IncidentKind.REJECTED, "no stock")

    assert allocation.release_reservations(ledger_engine, "o-1", ["o-1-S1"], incident) == 3
    assert allocation.release_reservations(ledger_engine, "o-1", ["o-1-S1"], incident) == 0

    with Session(ledger_engine) as session:
        rows = session.exec(select(IncidentRow)).all()
    assert [(r.kind, type(r.kind)) for r in rows] == [("rejected", str)]
    assert position(ledger_engine, "WH-A") == (10, 0, 0)


def test_fulfilling_a_shipment_takes_its_units_off_hand_once(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 10})
    allocation.allocate(ledger_engine, SLA, _request("o-1", 3))

    assert allocation.fulfil_reservations(ledger_engine, "o-1", "o-1-S1") == 3
    assert allocation.fulfil_reservations(ledger_engine, "o-1", "o-1-S1") == 0
    assert position(ledger_engine, "WH-A") == (7, 0, 0)
