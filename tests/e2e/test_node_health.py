"""A node that keeps rejecting or missing SLAs is degraded by itself and its waiting orders move;
a node brought back up starts with a clean record. The rule itself is tested in
tests/unit/test_node_health_rule.py, the ledger's record in
tests/integration/test_ledger_node_health.py."""

import asyncio

from tests.support.housekeeping_runs import run_housekeeping
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import build_network
from tests.support.orders_api import order_payload

PATIENT = {"pick_sla_seconds": 600, "ship_sla_seconds": 600, "accept_sla_seconds": 600}


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
