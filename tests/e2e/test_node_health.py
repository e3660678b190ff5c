"""A node that keeps rejecting or missing SLAs is degraded by itself and its waiting orders move;
one that fails now and then is left alone; a node brought back up starts with a clean record."""

import asyncio

from domain.node_health import NodeHealthRule, NodeRecord, degradation_reason
from tests.support.housekeeping_runs import run_housekeeping
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import build_network
from tests.support.orders_api import order_payload

RULE = NodeHealthRule(window_seconds=900, min_incidents=3, max_incident_share=0.5)
PATIENT = {"pick_sla_seconds": 600, "ship_sla_seconds": 600, "accept_sla_seconds": 600}


def _record(shipments: int, rejected: int, late: int = 0) -> NodeRecord:
    return NodeRecord("store-7", shipments, rejected + late, rejected, late)


def test_a_node_failing_most_of_its_recent_shipments_is_degraded_with_the_figures() -> None:
    reason = degradation_reason(_record(shipments=5, rejected=2, late=1), RULE)

    assert reason is not None
    assert "3 of its last 5 shipments failed (2 rejected, 1 missed an SLA)" in reason
    assert "50%" in reason


def test_a_busy_node_with_a_few_failures_stays_up() -> None:
    assert degradation_reason(_record(shipments=400, rejected=6), RULE) is None


def test_a_quiet_node_with_one_or_two_failures_stays_up() -> None:
    assert degradation_reason(_record(shipments=2, rejected=2), RULE) is None


def test_failures_on_shipments_no_longer_counted_still_weigh_as_shipments() -> None:
    # Incidents whose reservations were touched before the window still count as handled.
    assert degradation_reason(_record(shipments=0, rejected=3), RULE) is not None


def test_down_moves_unpicked_orders_degraded_only_when_asked_up_never() -> None:
    import pytest

    from domain.node_status import InvalidStatusChange, NodeStatus, reallocates_unpicked

    assert reallocates_unpicked(NodeStatus.DOWN, None) is True
    assert reallocates_unpicked(NodeStatus.DOWN, False) is False
    assert reallocates_unpicked(NodeStatus.DEGRADED, None) is False
    assert reallocates_unpicked(NodeStatus.DEGRADED, True) is True
    assert reallocates_unpicked(NodeStatus.UP, None) is False
    with pytest.raises(InvalidStatusChange, match="reallocate_unpicked"):
        reallocates_unpicked(NodeStatus.UP, True)


async def _submit(stack, net) -> str:
    response = await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


async def _until_shipment(stack, order_id: str, node_id: str, status: str) -> None:
    for _ in range(600):
        order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
        if any(
            s["node_id"] == node_id and s["status"] == status for s in order.get("shipments", [])
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{order_id} never had a {status} shipment at {node_id}")


async def test_a_node_that_keeps_rejecting_is_degraded_and_its_waiting_orders_move(stack) -> None:
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"x": {"km_east": 5, **PATIENT}, "y": {"km_east": 90, **PATIENT}},
        {("x", "tee"): 50, ("y", "tee"): 50},
    )
    x, y = net.node("x"), net.node("y")
    await stack.set_node_mode(x, "reject")
    rejected = [await _submit(stack, net) for _ in range(3)]
    for order_id in rejected:
        await _until_shipment(stack, order_id, x, "REJECTED")
    await stack.set_node_mode(x, "accept_only")
    waiting = [await _submit(stack, net) for _ in range(2)]
    for order_id in waiting:
        await _until_shipment(stack, order_id, x, "ACCEPTED")

    result = await run_housekeeping(stack)

    assert x in result.nodes_degraded
    nodes = {n["node_id"]: n for n in (await stack.http.get("/v1/nodes")).json()}
    assert nodes[x]["status"] == "degraded" and nodes[x]["active"] is False
    assert "automatically degraded: 3 of its last 5 shipments failed" in nodes[x]["status_reason"]
    history = (await stack.http.get(f"/v1/nodes/{x}/status-history")).json()
    assert [(h["status"], h["automatic"]) for h in history] == [("degraded", True)]
    for order_id in waiting:
        order = await stack.wait_for_status(order_id, "COMPLETED", deadline_seconds=180)
        assert order["shipments"][-1]["node_id"] == y
        assert "automatically degraded" in order["shipments"][0]["reason"]
    fresh = await _submit(stack, net)
    order = await stack.wait_for_status(fresh, "COMPLETED", deadline_seconds=180)
    assert [s["node_id"] for s in order["shipments"]] == [y]  # no new orders while degraded
    assert x not in (await run_housekeeping(stack)).nodes_degraded  # one fan-out per degradation
    assert_ledger_balances(stack.engine, rejected + waiting + [fresh])

    back = await stack.http.put(f"/v1/nodes/{x}/status", json={"status": "up", "reason": "fixed"})
    assert back.status_code == 200, back.text
    await stack.set_node_mode(x, "normal")

    assert x not in (await run_housekeeping(stack)).nodes_degraded  # old incidents are forgiven
    nodes = {n["node_id"]: n for n in (await stack.http.get("/v1/nodes")).json()}
    assert nodes[x]["status"] == "up"
    history = (await stack.http.get(f"/v1/nodes/{x}/status-history")).json()
    latest = history[0]
    assert (latest["status"], latest["automatic"], latest["reason"]) == ("up", False, "fixed")
    again = await _submit(stack, net)
    order = await stack.wait_for_status(again, "COMPLETED", deadline_seconds=180)
    assert [s["node_id"] for s in order["shipments"]] == [x]


def test_the_ledger_reads_a_nodes_record_since_its_last_status_change(ledger_engine) -> None:
    from datetime import UTC, datetime, timedelta

    from domain.node_status import NodeStatus
    from ledger.db import transaction
    from ledger.network import set_node_status
    from ledger.node_health import automatically_degraded, record_incident, records_of_up_nodes
    from tests.support.ledger_fixtures import seed

    seed(ledger_engine, {"A": 10, "B": 10})
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with transaction(ledger_engine) as tx:
        for n in range(3):
            assert record_incident(tx, f"O{n}", "A", f"O{n}-S1", "rejected", "no stock")
        assert not record_incident(tx, "O0", "A", "O0-S1", "rejected", "retried")  # once only
        record_incident(tx, "O9", "B", "O9-S1", "timed_out", "late")
    with transaction(ledger_engine) as tx:
        records = {r.node_id: r for r in records_of_up_nodes(tx, hour_ago)}
        set_node_status(tx, "A", NodeStatus.DEGRADED, "automatically degraded", automatic=True)
        set_node_status(tx, "B", NodeStatus.DOWN, "power cut")
    with transaction(ledger_engine) as tx:
        degraded = automatically_degraded(tx)
        set_node_status(tx, "A", NodeStatus.UP, "fixed")
    with transaction(ledger_engine) as tx:
        after_up = records_of_up_nodes(tx, hour_ago)
        still_degraded = automatically_degraded(tx)

    assert (records["A"].incidents, records["A"].rejections) == (3, 3)
    assert (records["B"].incidents, records["B"].missed_slas) == (1, 1)
    assert [d.node_id for d in degraded] == ["A"]  # B is down by a person, not by the rule
    assert after_up == [] and still_degraded == []  # back up: a clean record
