"""services.network on real SQLite and PostgreSQL: a person's status change and the node-health
rule's go through one path, which says whether the node's unpicked orders move and which change
it was; stock adjustments."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.errors import UnknownReference
from domain.node_health import NodeHealthRule
from domain.node_status import InvalidStatusChange, NodeStatus
from ledger.db import transaction
from ledger.node_health import record_incident
from ledger.tables import Node, NodeStatusChange
from services import network
from services.network import ZeroAdjustment
from tests.support.ledger_fixtures import position, seed

RULE = NodeHealthRule(window_seconds=3600, min_incidents=3, max_incident_share=0.5)


def _history(engine: Engine, node_id: str) -> list[tuple[str, bool]]:
    with Session(engine) as session:
        rows = session.exec(
            select(NodeStatusChange)
            .where(col(NodeStatusChange.node_id) == node_id)
            .order_by(col(NodeStatusChange.id))
        ).all()
        return [(r.status, r.automatic) for r in rows]


def test_a_node_going_down_moves_its_unpicked_orders_and_names_the_change(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"A": 10})

    down = network.change_node_status(ledger_engine, "A", NodeStatus.DOWN, "power cut")
    degraded = network.change_node_status(ledger_engine, "A", NodeStatus.DEGRADED, "slow")

    assert (down.reallocate_unpicked, degraded.reallocate_unpicked) == (True, False)
    assert degraded.change_id > down.change_id > 0
    assert _history(ledger_engine, "A") == [("down", False), ("degraded", False)]
    with Session(ledger_engine) as session:
        node = session.get(Node, "A")
        assert node is not None and (node.active, node.status_reason) == (False, "slow")


def test_a_status_change_that_is_refused_records_nothing(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"A": 10})
    network.change_node_status(ledger_engine, "A", NodeStatus.DOWN, "power cut")

    with pytest.raises(InvalidStatusChange, match="reallocate_unpicked"):
        network.change_node_status(ledger_engine, "A", NodeStatus.UP, "fixed", True)
    with pytest.raises(UnknownReference, match="node_id: unknown B"):
        network.change_node_status(ledger_engine, "B", NodeStatus.DOWN, "?")

    assert _history(ledger_engine, "A") == [("down", False)]


def test_the_health_rule_degrades_a_failing_node_once_and_keeps_reporting_it(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"A": 10, "B": 10})
    with transaction(ledger_engine) as session:
        for n in range(3):
            record_incident(session, f"O{n}", "A", f"O{n}-S1", "rejected", "no stock")

    first = network.degrade_unhealthy_nodes(ledger_engine, RULE, datetime.now(UTC))
    again = network.degrade_unhealthy_nodes(ledger_engine, RULE, datetime.now(UTC))

    assert [(c.node_id, c.status, c.reallocate_unpicked) for c in first] == [
        ("A", NodeStatus.DEGRADED, True)
    ]
    assert "automatically degraded: 3 of its last 3 shipments failed" in first[0].reason
    assert again == first  # the same change: its fan-out is started once, by its id
    assert _history(ledger_engine, "A") == [("degraded", True)]
    assert _history(ledger_engine, "B") == []

    network.change_node_status(ledger_engine, "A", NodeStatus.UP, "fixed")
    assert network.degrade_unhealthy_nodes(ledger_engine, RULE, datetime.now(UTC)) == []


def test_a_zero_adjustment_is_refused_and_others_move_on_hand(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"A": 10})

    with pytest.raises(ZeroAdjustment, match="delta: must not be zero"):
        network.adjust_stock(ledger_engine, "A", "TEE", 0)
    adjusted = network.adjust_stock(ledger_engine, "A", "TEE", -4)

    assert adjusted.on_hand == 6
    assert position(ledger_engine, "A") == (6, 0, 0)
