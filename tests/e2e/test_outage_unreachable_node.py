"""A node that goes down usually does not answer either (audit M1): its orders move at once,
and the cancels that cannot reach it follow in the background instead of holding each move for
the cancel's ten minutes (or a retrying release for the node's whole accept SLA)."""

import asyncio

from contracts.outage import NodeOutageResult
from ledger.db import transaction
from ledger.tables import Node
from stack.servers import free_port
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import build_network
from tests.support.orders_api import order_payload

PATIENT = {"pick_sla_seconds": 600, "ship_sla_seconds": 600, "accept_sla_seconds": 600}
NODE_DIRECTORY_TTL = 5.5  # activities.fulfilment.NodeDirectory re-reads a node this often


async def _submit(stack, net, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))
        assert response.status_code == 201, response.text
        ids.append(response.json()["order_id"])
    return ids


async def _last_shipment_is(stack, order_id: str, *statuses: str) -> dict:
    for _ in range(600):  # a deadline, not a timing claim
        order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
        if order.get("shipments") and order["shipments"][-1]["status"] in statuses:
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(f"{order_id} never reached {statuses}")


async def test_a_down_node_that_does_not_answer_has_its_orders_moved_at_once(stack) -> None:
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"x": {"km_east": 5, **PATIENT}, "y": {"km_east": 90, **PATIENT}},
        {("x", "tee"): 50, ("y", "tee"): 50},
    )
    await stack.set_node_mode(net.node("x"), "accept_only")
    accepted = await _submit(stack, net, 5)
    for order_id in accepted:
        await _last_shipment_is(stack, order_id, "ACCEPTED")
    with transaction(stack.engine) as session:  # x's system stops answering
        node = session.get(Node, net.node("x"))
        assert node is not None
        node.system_url = f"http://127.0.0.1:{free_port()}/nodes/{node.node_id}"
        session.add(node)
    await asyncio.sleep(NODE_DIRECTORY_TTL)
    releasing = await _submit(stack, net, 5)  # their release retries against a closed port
    for order_id in releasing:
        await _last_shipment_is(stack, order_id, "ALLOCATED")

    response = await stack.http.put(
        f"/v1/nodes/{net.node('x')}/status", json={"status": "down", "reason": "site offline"}
    )

    assert response.status_code == 200, response.text
    outage = stack.client.get_workflow_handle(
        response.json()["reallocation_workflow_id"], result_type=NodeOutageResult
    )
    result = await asyncio.wait_for(outage.result(), timeout=120)
    assert sorted(result.moved) == sorted(accepted + releasing)
    for order_id in accepted + releasing:
        order = await stack.wait_for_status(order_id, "COMPLETED", deadline_seconds=60)
        assert order["shipments"][0]["status"] == "REALLOCATED"
        assert order["shipments"][-1]["node_id"] == net.node("y")
    assert_ledger_balances(stack.engine, accepted + releasing)
    await stack.http.put(
        f"/v1/nodes/{net.node('x')}/status", json={"status": "up", "reason": "back"}
    )
