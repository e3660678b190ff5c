"""Proactive reallocation: a node goes down while 100 orders wait on it."""

import asyncio

from contracts.outage import NodeOutageResult
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import build_network
from tests.support.orders_api import order_payload

PATIENT = {"pick_sla_seconds": 600, "ship_sla_seconds": 600, "accept_sla_seconds": 600}
WAITING = 100
PICKED = 10


async def _submit_all(stack, net, count: int) -> list[str]:
    gate = asyncio.Semaphore(10)  # a channel's realistic burst, not 100 sockets at once

    async def submit() -> str:
        async with gate:
            response = await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))
            assert response.status_code == 201, response.text
            return response.json()["order_id"]

    return list(await asyncio.gather(*(submit() for _ in range(count))))


async def _until_every_shipment_is(stack, order_ids: list[str], status: str) -> None:
    for order_id in order_ids:
        for _ in range(1200):  # a deadline under load, not a timing claim
            order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
            if order.get("shipments") and order["shipments"][-1]["status"] == status:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{order_id} never reached {status}")


async def test_a_node_going_down_moves_every_unpicked_order_and_no_picked_one(stack) -> None:
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"x": {"km_east": 5, **PATIENT}, "y": {"km_east": 90, **PATIENT}},
        {("x", "tee"): 500, ("y", "tee"): 500},
    )
    await stack.set_node_mode(net.node("x"), "picks_only")  # picked, labelled, never shipped
    picked = await _submit_all(stack, net, PICKED)
    await _until_every_shipment_is(stack, picked, "LABELLED")
    await stack.set_node_mode(net.node("x"), "accept_only")  # accepted, never picked
    waiting = await _submit_all(stack, net, WAITING)
    await _until_every_shipment_is(stack, waiting, "ACCEPTED")

    response = await stack.http.put(
        f"/v1/nodes/{net.node('x')}/status", json={"status": "down", "reason": "power cut"}
    )

    assert response.status_code == 200, response.text
    outage = stack.client.get_workflow_handle(
        response.json()["reallocation_workflow_id"], result_type=NodeOutageResult
    )
    result = await outage.result()
    assert sorted(result.moved) == sorted(waiting)
    assert result.left_in_place == {}  # picked orders are not even candidates
    for order_id in waiting:
        order = await stack.wait_for_status(order_id, "COMPLETED", deadline_seconds=180)
        assert order["shipments"][-1]["node_id"] == net.node("y")
        assert "is down: power cut" in order["shipments"][0]["reason"]
    for order_id in picked:
        order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
        assert [s["node_id"] for s in order["shipments"]] == [net.node("x")]
    assert_ledger_balances(stack.engine, waiting)

    back = await stack.http.put(
        f"/v1/nodes/{net.node('x')}/status", json={"status": "up", "reason": "power back"}
    )
    assert back.json()["reallocation_workflow_id"] is None
    nodes = {n["node_id"]: n for n in (await stack.http.get("/v1/nodes")).json()}
    assert nodes[net.node("x")]["active"] is True


async def test_a_degraded_node_keeps_its_orders_unless_ops_ask_to_move_them(stack) -> None:
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"x": {"km_east": 5, **PATIENT}, "y": {"km_east": 90, **PATIENT}},
        {("x", "tee"): 50, ("y", "tee"): 50},
    )
    x = net.node("x")
    await stack.set_node_mode(x, "accept_only")
    waiting = await _submit_all(stack, net, 3)
    await _until_every_shipment_is(stack, waiting, "ACCEPTED")

    kept = await stack.http.put(
        f"/v1/nodes/{x}/status", json={"status": "degraded", "reason": "short-staffed"}
    )
    assert kept.json()["reallocation_workflow_id"] is None
    refused = await stack.http.put(
        f"/v1/nodes/{x}/status",
        json={"status": "up", "reason": "fine", "reallocate_unpicked": True},
    )
    assert refused.status_code == 422
    assert "reallocate_unpicked" in refused.json()["message"]
    moved = await stack.http.put(
        f"/v1/nodes/{x}/status",
        json={"status": "degraded", "reason": "flooded", "reallocate_unpicked": True},
    )

    outage = stack.client.get_workflow_handle(
        moved.json()["reallocation_workflow_id"], result_type=NodeOutageResult
    )
    assert sorted((await outage.result()).moved) == sorted(waiting)
    for order_id in waiting:
        order = await stack.wait_for_status(order_id, "COMPLETED", deadline_seconds=180)
        assert order["shipments"][-1]["node_id"] == net.node("y")
        assert "is degraded: flooded" in order["shipments"][0]["reason"]
    assert_ledger_balances(stack.engine, waiting)
