"""A checkout hold at the edges of its life and its owner, on real SQLite and PostgreSQL: a hold
that expired a moment before its order allocates (audit M4), and a hold id presented by another
channel's order (audit L2)."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from domain.errors import UnknownReference
from domain.geo import GeoPoint
from domain.orders import DeliveryMethod, OrderLine
from domain.sla import uniform_sla_policy
from ledger import holds
from ledger.db import transaction
from ledger.tables import CheckoutHold, HoldStatus
from services import allocation
from services.allocation import AllocationRequest
from services.orders import refuse_invalid_order
from tests.support.ledger_fixtures import position, seed

SLA = uniform_sla_policy(60)


def _request(order_id: str, channel: str, hold_id: str, quantity: int = 1) -> AllocationRequest:
    return AllocationRequest(
        order_id=order_id,
        lines=[OrderLine(line_no=1, sku="TEE", quantity=quantity)],
        destination=GeoPoint(lat=0, lon=0),
        delivery_method=DeliveryMethod.HOME,
        channel=channel,
        hold_id=hold_id,
    )


def _hold(engine: Engine, hold_id: str, channel: str, quantity: int, ttl: timedelta) -> None:
    with transaction(engine) as session:
        line = holds.HoldRequestLine(1, "WH-A", "TEE", quantity)
        holds.place_hold(session, hold_id, channel, [line], datetime.now(UTC) + ttl)


def _status(engine: Engine, hold_id: str) -> str:
    with Session(engine) as session:
        hold = session.get(CheckoutHold, hold_id)
        assert hold is not None
        return hold.status


def test_an_order_whose_hold_just_expired_gets_the_unit_its_own_hold_was_keeping(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 1})  # the only unit, held at checkout for 1 s
    _hold(ledger_engine, "H-1", "web", 1, timedelta(seconds=1))
    time.sleep(1.5)  # the shopper paid late; housekeeping has not swept the hold yet

    result = allocation.allocate(ledger_engine, SLA, _request("o-1", "web", "H-1"))

    assert not result.backordered, result.explanation
    assert [(s.node_id, [ln.quantity for ln in s.lines]) for s in result.shipments] == [
        ("WH-A", [1])
    ]
    assert position(ledger_engine, "WH-A") == (1, 1, 0)  # reserved, no longer held
    assert _status(ledger_engine, "H-1") == HoldStatus.EXPIRED
    with transaction(ledger_engine) as session:  # housekeeping comes by later: nothing to do
        assert holds.expire_holds(session, datetime.now(UTC)) == []
    assert position(ledger_engine, "WH-A") == (1, 1, 0)


def test_an_order_never_converts_another_channels_hold(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 3})
    _hold(ledger_engine, "H-B", "market", 2, timedelta(minutes=10))  # B's shopper holds 2 of 3

    result = allocation.allocate(ledger_engine, SLA, _request("o-a", "web", "H-B", quantity=2))

    assert result.backordered, result.explanation  # 1 unit is all A can have
    assert position(ledger_engine, "WH-A") == (3, 0, 2)  # B's hold untouched
    assert _status(ledger_engine, "H-B") == HoldStatus.ACTIVE


def test_an_order_never_gives_back_another_channels_hold_that_does_not_match(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 3})
    _hold(ledger_engine, "H-B", "market", 2, timedelta(minutes=10))

    result = allocation.allocate(ledger_engine, SLA, _request("o-a", "web", "H-B", quantity=1))

    assert [s.node_id for s in result.shipments] == ["WH-A"]
    assert position(ledger_engine, "WH-A") == (3, 1, 2)  # sourced beside B's hold
    assert _status(ledger_engine, "H-B") == HoldStatus.ACTIVE


def test_intake_refuses_an_order_presenting_another_channels_hold(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 3})
    _hold(ledger_engine, "H-B", "market", 2, timedelta(minutes=10))
    lines = [OrderLine(line_no=1, sku="TEE", quantity=2)]

    with Session(ledger_engine) as session:
        with pytest.raises(UnknownReference, match="hold_id: unknown H-B"):
            refuse_invalid_order(session, lines, DeliveryMethod.HOME, None, "H-B", "web")
        refuse_invalid_order(session, lines, DeliveryMethod.HOME, None, "H-B", "market")
