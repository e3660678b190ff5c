"""Orders through the whole embedded stack: API -> workflow -> simulators -> ledger."""

import asyncio

import httpx
from sqlmodel import col, select

from ledger.db import transaction
from ledger.tables import Reservation, StockPosition
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import build_network
from tests.support.orders_api import order_payload

LEFT_THE_NODE = ("SHIPPED", "DELIVERED")  # the carrier may report delivery before we look
TWO_WAREHOUSES = {
    "near": {"type": "warehouse", "km_east": 5},
    "far": {"type": "warehouse", "km_east": 300},
}


def _positions(stack, net, sku: str) -> dict[str, tuple[int, int]]:
    with transaction(stack.engine) as session:
        rows = session.exec(
            select(StockPosition).where(col(StockPosition.sku) == net.sku(sku))
        ).all()
        return {p.node_id: (p.on_hand, p.reserved) for p in rows}


async def _submit(stack, payload: dict) -> str:
    response = await stack.http.post("/v1/orders", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


async def test_order_ships_from_nearest_node_with_tracking_number(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 5, ("far", "tee"): 5}
    )
    order_id = await _submit(stack, order_payload(net, [("tee", 2)]))

    order = await stack.wait_for_status(order_id, "COMPLETED")

    [shipment] = order["shipments"]
    assert shipment["node_id"] == net.node("near")
    assert shipment["status"] in LEFT_THE_NODE
    assert shipment["tracking_number"].startswith("1Z")
    assert [e["event"] for e in order["timeline"]][:2] == ["received", "allocated"]
    explanation = order["timeline"][1]["detail"]  # the optimizer's reasons, for ops
    assert f"runner-up {net.node('far')}" in explanation and "more" in explanation
    assert _positions(stack, net, "tee")[net.node("near")] == (3, 0)
    assert_ledger_balances(stack.engine, [order_id])


async def test_completed_order_is_listed_and_filtered_by_status_in_temporal(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)], channel="kiosk"))
    await stack.wait_for_status(order_id, "COMPLETED")

    query = f'OrderStatus="COMPLETED" AND Channel="kiosk" AND WorkflowId="{order_id}"'
    found: list[str] = []
    for _ in range(100):  # visibility is eventually consistent
        found = [wf.id async for wf in stack.client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [order_id]


async def test_duplicate_submission_returns_the_same_order(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 5})
    payload = order_payload(net, [("tee", 1)])

    first = await stack.http.post("/v1/orders", json=payload)
    second = await stack.http.post("/v1/orders", json=payload)

    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["order_id"] == second.json()["order_id"]
    assert second.json()["duplicate"] is True
    order_id = first.json()["order_id"]
    await stack.wait_for_status(order_id, "COMPLETED")
    third = await stack.http.post("/v1/orders", json=payload)  # even after it closed
    assert third.status_code == 200 and third.json()["status"] == "COMPLETED"
    runs = [wf async for wf in stack.client.list_workflows(f'WorkflowId="{order_id}"')]
    assert len(runs) == 1
    assert _positions(stack, net, "tee")[net.node("near")] == (4, 0)


async def test_multi_line_order_no_single_node_can_serve_splits_into_shipments(stack) -> None:
    net = build_network(
        stack.engine,
        stack.simulator_url,
        TWO_WAREHOUSES,
        {("near", "tee"): 5, ("far", "mug"): 5},
    )
    order_id = await _submit(stack, order_payload(net, [("tee", 1), ("mug", 2)]))

    order = await stack.wait_for_status(order_id, "COMPLETED")

    by_node = {s["node_id"]: s for s in order["shipments"]}
    assert set(by_node) == {net.node("near"), net.node("far")}
    assert all(s["status"] in LEFT_THE_NODE and s["tracking_number"] for s in by_node.values())
    assert len({s["tracking_number"] for s in by_node.values()}) == 2
    assert f"{net.node('near')} (warehouse" in order["timeline"][1]["detail"]
    assert f" + {net.node('far')} (warehouse" in order["timeline"][1]["detail"]
    assert_ledger_balances(stack.engine, [order_id])


async def test_cancel_before_shipping_releases_reservations_and_cancels_at_node(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 5})
    await stack.set_node_mode(net.node("near"), "accept_only")  # accepts, never picks
    order_id = await _submit(stack, order_payload(net, [("tee", 2)]))
    await stack.wait_for_status(order_id, "IN_FULFILLMENT")
    assert _positions(stack, net, "tee")[net.node("near")] == (5, 2)

    response = await stack.http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "customer"})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
    assert order["status"] == "CANCELLED"
    assert order["shipments"][0]["status"] == "CANCELLED"
    assert _positions(stack, net, "tee")[net.node("near")] == (5, 0)
    stats = await stack.sim_stats()
    assert stats["releases"][order["shipments"][0]["shipment_id"]] == "cancelled"
    assert_ledger_balances(stack.engine, [order_id])


async def test_cancel_is_refused_once_shipped(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    await stack.wait_for_status(order_id, "COMPLETED")

    response = await stack.http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "too late"})

    assert response.status_code == 409
    assert "COMPLETED" in response.json()["message"]
    assert _positions(stack, net, "tee")[net.node("near")] == (4, 0)


async def test_node_rejection_reallocates_to_another_node(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 5, ("far", "tee"): 5}
    )
    await stack.set_node_mode(net.node("near"), "reject")
    order_id = await _submit(stack, order_payload(net, [("tee", 2)]))

    order = await stack.wait_for_status(order_id, "COMPLETED")

    first, second = order["shipments"]
    assert (first["node_id"], first["status"]) == (net.node("near"), "REJECTED")
    assert "stock not found" in first["reason"]
    assert second["node_id"] == net.node("far") and second["status"] in LEFT_THE_NODE
    assert order["excluded_nodes"] == [net.node("near")]
    assert _positions(stack, net, "tee") == {net.node("near"): (5, 0), net.node("far"): (3, 0)}
    assert_ledger_balances(stack.engine, [order_id])


async def test_missed_sla_reallocates_and_cancels_at_the_late_node(stack) -> None:
    nodes = {**TWO_WAREHOUSES, "near": {"type": "warehouse", "km_east": 2, "accept_sla_seconds": 1}}
    net = build_network(
        stack.engine, stack.simulator_url, nodes, {("near", "tee"): 5, ("far", "tee"): 5}
    )
    await stack.set_node_mode(net.node("near"), "silent")
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))

    order = await stack.wait_for_status(order_id, "COMPLETED")

    late, moved = order["shipments"]
    assert (late["node_id"], late["status"]) == (net.node("near"), "TIMED_OUT")
    assert "missed its accepted SLA" in late["reason"]
    assert moved["node_id"] == net.node("far")
    assert (await stack.sim_stats())["releases"][late["shipment_id"]] == "cancelled"
    assert_ledger_balances(stack.engine, [order_id])


async def test_backordered_order_completes_after_stock_arrives_and_support_retries(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 0})
    order_id = await _submit(stack, order_payload(net, [("tee", 3)]))
    order = await stack.wait_for_status(order_id, "BACKORDERED")
    assert "no eligible node can serve line 1" in order["timeline"][-1]["detail"]

    too_early = await stack.http.post(f"/v1/orders/{order_id}/retry", json={"reason": "check"})
    assert too_early.status_code == 200 and too_early.json()["status"] == "BACKORDERED"
    receipt = {"node_id": net.node("near"), "sku": net.sku("tee"), "delta": 3, "reason": "PO-1"}
    assert (await stack.http.post("/v1/inventory/adjustments", json=receipt)).status_code == 200
    retried = await stack.http.post(f"/v1/orders/{order_id}/retry", json={"reason": "stock in"})

    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] != "BACKORDERED"
    await stack.wait_for_status(order_id, "COMPLETED")
    assert _positions(stack, net, "tee")[net.node("near")] == (0, 0)
    assert_ledger_balances(stack.engine, [order_id])


async def test_support_reallocation_moves_an_unpicked_shipment(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 5, ("far", "tee"): 5}
    )
    await stack.set_node_mode(net.node("near"), "accept_only")
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    await stack.wait_for_status(order_id, "IN_FULFILLMENT")

    response = await stack.http.post(
        f"/v1/orders/{order_id}/reallocate", json={"reason": "store flooded"}
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["moved_shipments"]) == 1
    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert order["shipments"][0]["status"] == "REALLOCATED"
    assert order["shipments"][0]["reason"] == "support: store flooded"
    assert order["shipments"][1]["node_id"] == net.node("far")
    assert _positions(stack, net, "tee")[net.node("near")] == (5, 0)
    again = await stack.http.post(f"/v1/orders/{order_id}/reallocate", json={"reason": "again"})
    assert again.status_code == 409
    assert_ledger_balances(stack.engine, [order_id])


async def test_cancelling_a_backordered_order_leaves_no_reservation(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 5, ("far", "mug"): 0}
    )
    order_id = await _submit(stack, order_payload(net, [("tee", 1), ("mug", 1)]))
    await stack.wait_for_status(order_id, "BACKORDERED")

    response = await stack.http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "waited"})

    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    with transaction(stack.engine) as session:
        rows = session.exec(select(Reservation).where(col(Reservation.order_id) == order_id)).all()
        assert all(r.status != "active" for r in rows)
    assert_ledger_balances(stack.engine, [order_id])


async def test_click_and_collect_from_store_stock_needs_no_carrier_label(stack) -> None:
    nodes = {**TWO_WAREHOUSES, "shop": {"type": "store", "km_east": 20, "can_pickup": True}}
    net = build_network(
        stack.engine, stack.simulator_url, nodes, {("near", "tee"): 5, ("shop", "tee"): 2}
    )
    payload = order_payload(
        net, [("tee", 1)], delivery_method="pickup", pickup_node_id=net.node("shop")
    )
    order_id = await _submit(stack, payload)

    order = await stack.wait_for_status(order_id, "COMPLETED")

    [shipment] = order["shipments"]
    assert shipment["node_id"] == net.node("shop")
    assert shipment["service"] == "collect-in-store"
    assert shipment["tracking_number"].startswith("COL-")
    assert shipment["shipment_id"] not in (await stack.sim_stats())["labels"]


async def test_a_refused_label_moves_the_shipment_and_never_strands_the_order(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, TWO_WAREHOUSES, {("near", "tee"): 5, ("far", "tee"): 5}
    )
    payload = order_payload(net, [("tee", 1)])
    order_id = f"order-web-{payload['external_id']}"
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        await sim.put(f"/sim/carrier/refusals/{order_id}")
    await _submit(stack, payload)

    order = await stack.wait_for_status(order_id, "BACKORDERED")

    assert [s["status"] for s in order["shipments"]] == ["REJECTED", "REJECTED"]
    assert "label or hand-over failed" in order["shipments"][0]["reason"]
    cancelled = await stack.http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "x"})
    assert cancelled.json()["status"] == "CANCELLED"
    assert_ledger_balances(stack.engine, [order_id])
