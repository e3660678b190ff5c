"""Allocation (services.allocation.allocate) plans on a snapshot, outside the write lock;
inside the write transaction the plan is checked again for what the conditional reservation
does not check (the channel pool's share, a node taken out of service). On SQLite and
PostgreSQL."""

import pytest
from sqlalchemy import Engine

from ledger import stock
from ledger.db import transaction
from ledger.errors import InsufficientStock
from ledger.tables import ChannelPool, Node
from services.allocation import _still_visible
from tests.support.ledger_fixtures import seed


def _request(node_id: str, quantity: int) -> stock.ReservationRequest:
    return stock.ReservationRequest(
        order_id="o-1", shipment_id="o-1-S1", line_no=1, node_id=node_id, sku="TEE",
        quantity=quantity,
    )  # fmt: skip


def test_a_plan_within_the_channels_share_passes_and_one_beyond_it_is_sent_back(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 10})
    with transaction(ledger_engine) as session:
        session.add(ChannelPool(channel="market", share_by_node_type={"warehouse": 0.5}))
    with transaction(ledger_engine) as session:
        _still_visible(session, "market", [_request("WH-A", 5)])  # half of 10
        with pytest.raises(InsufficientStock):
            _still_visible(session, "market", [_request("WH-A", 6)])
        # Another order of the channel took its share after this plan was made.
        stock.reserve(session, [_request("WH-A", 5)])
        with pytest.raises(InsufficientStock):
            _still_visible(session, "market", [_request("WH-A", 3)])


def test_a_plan_at_a_node_taken_out_of_service_is_sent_back(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 10})
    with transaction(ledger_engine) as session:
        _still_visible(session, "web", [_request("WH-A", 4)])
        node = session.get(Node, "WH-A")
        assert node is not None
        node.active = False
        session.add(node)
        session.flush()
        with pytest.raises(InsufficientStock):
            _still_visible(session, "web", [_request("WH-A", 4)])
