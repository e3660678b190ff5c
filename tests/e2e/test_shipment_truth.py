"""A shipment's truth is what its node says, and every order either ends or says why it waits
(issue 12: audit findings H3, H4, H5, H7, M2, M3, M5; item 2). Nodes whose answers the scenario
needs are scripted (tests/support/scripted_node.py); the test posts their events, signed."""

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest_asyncio
from sqlmodel import col, select

from domain.carriers import collection_code
from ledger.db import transaction
from ledger.tables import Node, StockPosition
from tests.support import network
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import build_network
from tests.support.orders_api import order_payload
from tests.support.scripted_node import ScriptedNodeSystem

ONE_SECOND_PICK = {"type": "warehouse", "km_east": 5, "pick_sla_seconds": 1}
FAR = {"type": "warehouse", "km_east": 300}


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[ScriptedNodeSystem]:
    system = ScriptedNodeSystem().start()
    yield system
    system.stop()


def _network(stack, scripted, near: dict, stock: dict[tuple[str, str], int]) -> network.TestNetwork:
    net = build_network(stack.engine, stack.simulator_url, {"near": near, "far": FAR}, stock)
    scripted.serve(stack.engine, net.node("near"))
    return net


async def _submit(stack, payload: dict) -> str:
    response = await stack.http.post("/v1/orders", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


async def _node_says(stack, net, order_id: str, shipment_id: str, event: str, **extra) -> None:
    body = {"order_id": order_id, "shipment_id": shipment_id, "event": event, **extra}
    node = net.node("near")
    response = await stack.signed_post(f"/v1/callbacks/nodes/{node}/events", body)
    assert response.status_code == 202, response.text


async def _wait_for(
    stack, order_id: str, what: str, holds: Callable[[dict], bool], seconds: float = 60
) -> dict:
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    order: dict = {}
    while loop.time() < until:
        response = await stack.http.get(f"/v1/orders/{order_id}")
        if response.status_code == 200 and holds(order := response.json()):
            return order
        await asyncio.sleep(0.1)
    timeline = [(e["event"], e["detail"]) for e in order.get("timeline", [])]
    raise AssertionError(f"{order_id}: never {what}; last seen {order}; timeline {timeline}")


def _shipment_is(index: int, *statuses: str) -> Callable[[dict], bool]:
    def holds(order: dict) -> bool:
        shipments = order["shipments"]
        return len(shipments) > index and shipments[index]["status"] in statuses

    return holds


def _position(stack, node_id: str, sku: str) -> tuple[int, int]:
    with transaction(stack.engine) as session:
        p = session.exec(
            select(StockPosition).where(
                col(StockPosition.node_id) == node_id, col(StockPosition.sku) == sku
            )
        ).one()
        return p.on_hand, p.reserved


async def _needs_attention_in_temporal(stack, order_id: str) -> bool:
    query = f'NeedsAttention = true AND WorkflowId = "{order_id}"'
    for _ in range(100):  # visibility is eventually consistent
        if [wf.id async for wf in stack.client.list_workflows(query)]:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_shipped_after_its_sla_move_is_a_real_shipment_and_cancels_the_replacement(
    stack, scripted
) -> None:
    net = _network(stack, scripted, ONE_SECOND_PICK, {("near", "tee"): 5, ("far", "tee"): 5})
    await stack.set_node_mode(net.node("far"), "accept_only")  # the replacement waits, unpicked
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))
    await _node_says(stack, net, order_id, s1, "accepted")
    await _wait_for(stack, order_id, "moved to far", _shipment_is(1, "ACCEPTED"))

    # The node ignored the cancel and shipped the parcel after all.
    await _node_says(stack, net, order_id, s1, "shipped", tracking_number="NODE-1")

    order = await stack.wait_for_status(order_id, "COMPLETED")
    first, replacement = order["shipments"]
    assert (first["status"], first["tracking_number"]) == ("SHIPPED", "NODE-1")
    assert replacement["status"] == "CANCELLED"
    assert "shipped these lines after all" in replacement["reason"]
    assert (await stack.sim_stats())["releases"][replacement["shipment_id"]] == "cancelled"
    assert any("after it was timed_out" in e["detail"] for e in order["timeline"])
    tee = net.sku("tee")
    assert _position(stack, net.node("near"), tee) == (4, 0)  # the parcel left near
    assert _position(stack, net.node("far"), tee) == (5, 0)
    assert_ledger_balances(stack.engine, [order_id])


async def test_a_cancel_the_node_answers_too_late_keeps_the_shipment_and_sources_nothing(
    stack, scripted
) -> None:
    net = _network(stack, scripted, ONE_SECOND_PICK, {("near", "tee"): 5, ("far", "tee"): 5})
    scripted.cancel_answer = 409
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))
    await _node_says(stack, net, order_id, s1, "accepted")

    order = await stack.wait_for_status(order_id, "COMPLETED")  # the pick SLA fired

    [shipment] = order["shipments"]  # nothing re-sourced: no second parcel
    assert shipment["status"] == "SHIPPED"
    assert scripted.calls[f"cancel:{s1}"] == 1
    assert any("could not cancel, it has shipped" in e["detail"] for e in order["timeline"])
    assert _position(stack, net.node("near"), net.sku("tee")) == (4, 0)
    assert_ledger_balances(stack.engine, [order_id])


async def test_a_node_that_only_sends_shipped_completes_the_order_without_our_label(
    stack, scripted
) -> None:
    net = _network(stack, scripted, {"type": "warehouse", "km_east": 5}, {("near", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 2)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))

    await _node_says(stack, net, order_id, s1, "shipped", tracking_number="WMS-77")

    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert order["shipments"][0]["tracking_number"] == "WMS-77"
    assert s1 not in (await stack.sim_stats())["labels"]
    assert scripted.calls[f"dispatch:{s1}"] == 0
    assert _position(stack, net.node("near"), net.sku("tee")) == (3, 0)


async def test_a_label_refused_after_pick_cancels_the_picked_order_at_the_node(stack) -> None:
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"near": {"type": "warehouse", "km_east": 5}, "far": FAR},
        {("near", "tee"): 5, ("far", "tee"): 5},
    )
    payload = order_payload(net, [("tee", 1)])
    order_id = f"order-web-{payload['external_id']}"
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        await sim.put(f"/sim/carrier/refusals/{order_id}")
    await _submit(stack, payload)

    order = await stack.wait_for_status(order_id, "BACKORDERED")

    releases = (await stack.sim_stats())["releases"]
    assert [releases[s["shipment_id"]] for s in order["shipments"]] == ["cancelled", "cancelled"]
    assert_ledger_balances(stack.engine, [order_id])
    await stack.http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "tidy"})


async def test_a_rejection_after_pick_moves_the_shipment_to_another_node(stack, scripted) -> None:
    net = _network(
        stack,
        scripted,
        {"type": "warehouse", "km_east": 5},
        {("near", "tee"): 5, ("far", "tee"): 5},
    )
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))
    await _node_says(stack, net, order_id, s1, "accepted")
    await _node_says(stack, net, order_id, s1, "picked")
    await _wait_for(stack, order_id, "labelled", _shipment_is(0, "LABELLED"))

    await _node_says(stack, net, order_id, s1, "rejected", reason="damaged in packing")

    order = await stack.wait_for_status(order_id, "COMPLETED")
    first, second = order["shipments"]
    assert first["status"] == "REJECTED" and "damaged in packing" in first["reason"]
    assert second["node_id"] == net.node("far")
    assert _position(stack, net.node("near"), net.sku("tee")) == (5, 0)
    assert_ledger_balances(stack.engine, [order_id])


async def test_a_shipment_late_after_its_label_needs_attention_until_support_marks_it_shipped(
    stack, scripted
) -> None:
    near = {"type": "warehouse", "km_east": 5, "ship_sla_seconds": 1}
    net = _network(stack, scripted, near, {("near", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))
    await _node_says(stack, net, order_id, s1, "accepted")
    await _node_says(stack, net, order_id, s1, "picked")

    late = await _wait_for(stack, order_id, "flagged", lambda o: bool(o.get("attention")))
    assert "not shipped after its ship SLA" in late["attention"]
    assert late["deadline"] is None  # nothing more to wait for on a clock: a person acts
    assert await _needs_attention_in_temporal(stack, order_id)
    refused = await stack.http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "x"})
    assert refused.status_code == 409 and "labelled" in refused.json()["message"]
    not_by_acknowledging = await stack.http.post(
        f"/v1/orders/{order_id}/acknowledge", json={"reason": "seen"}
    )
    assert not_by_acknowledging.status_code == 409  # the wait needs an action, not a nod

    marked = await stack.http.post(
        f"/v1/orders/{order_id}/shipments/{s1}/mark-shipped",
        json={"reason": "the node confirmed by phone", "tracking_number": "PHONE-1"},
    )

    assert marked.status_code == 200, marked.text
    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert order["attention"] is None
    assert_ledger_balances(stack.engine, [order_id])
    assert order["shipments"][0]["tracking_number"] == "PHONE-1"
    assert _position(stack, net.node("near"), net.sku("tee")) == (4, 0)
    assert not await _needs_attention_now(stack, order_id)


async def _needs_attention_now(stack, order_id: str) -> bool:
    query = f'NeedsAttention = true AND WorkflowId = "{order_id}"'
    await asyncio.sleep(1)  # visibility lags: give a stale true the time to clear
    return bool([wf.id async for wf in stack.client.list_workflows(query)])


async def test_force_cancel_cancels_a_labelled_shipment_at_its_node(stack, scripted) -> None:
    net = _network(stack, scripted, {"type": "warehouse", "km_east": 5}, {("near", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))
    await _node_says(stack, net, order_id, s1, "accepted")
    await _node_says(stack, net, order_id, s1, "picked")
    await _wait_for(stack, order_id, "handed over", lambda o: "to ship" in o["waiting_for"])

    forced = await stack.http.post(
        f"/v1/orders/{order_id}/cancel", json={"reason": "fraud", "force": True}
    )

    assert forced.status_code == 200, forced.text
    assert forced.json()["status"] == "CANCELLED"
    assert scripted.calls[f"cancel:{s1}"] == 1
    assert _position(stack, net.node("near"), net.sku("tee")) == (5, 0)
    assert_ledger_balances(stack.engine, [order_id])


async def test_force_reallocate_re_releases_a_picked_shipment_elsewhere(stack, scripted) -> None:
    net = _network(
        stack,
        scripted,
        {"type": "warehouse", "km_east": 5},
        {("near", "tee"): 5, ("far", "tee"): 5},
    )
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))
    await _node_says(stack, net, order_id, s1, "accepted")
    await _node_says(stack, net, order_id, s1, "picked")
    await _wait_for(stack, order_id, "picked", _shipment_is(0, "PICKED", "LABELLED"))
    plain = await stack.http.post(f"/v1/orders/{order_id}/reallocate", json={"reason": "x"})
    assert plain.status_code == 409

    forced = await stack.http.post(
        f"/v1/orders/{order_id}/reallocate", json={"reason": "node lost it", "force": True}
    )

    assert forced.status_code == 200, forced.text
    order = await stack.wait_for_status(order_id, "COMPLETED")
    first, second = order["shipments"]
    assert first["status"] == "REALLOCATED" and second["node_id"] == net.node("far")
    assert scripted.calls[f"cancel:{s1}"] == 1
    assert_ledger_balances(stack.engine, [order_id])


async def test_a_delivery_scan_before_shipped_counts_as_shipped_and_delivered(
    stack, scripted
) -> None:
    net = _network(stack, scripted, {"type": "warehouse", "km_east": 5}, {("near", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))

    await _node_says(stack, net, order_id, s1, "delivered")

    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert order["shipments"][0]["status"] == "DELIVERED"
    assert _position(stack, net.node("near"), net.sku("tee")) == (4, 0)


async def test_every_delivery_scan_reaches_the_read_model(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, {"near": {"type": "warehouse"}}, {("near", "tee"): 50}
    )
    orders = [await _submit(stack, order_payload(net, [("tee", 1)])) for _ in range(15)]

    for order_id in orders:  # the simulated carrier scans every parcel soon after it ships
        await _wait_for(stack, order_id, "delivered", _shipment_is(0, "DELIVERED"))


async def test_collection_codes_cannot_be_computed_from_the_order_number(stack) -> None:
    nodes = {"shop": {"type": "store", "km_east": 20, "can_pickup": True}}
    net = build_network(stack.engine, stack.simulator_url, nodes, {("shop", "tee"): 4})
    payload = order_payload(
        net, [("tee", 1)], delivery_method="pickup", pickup_node_id=net.node("shop")
    )
    codes = []
    for _ in range(2):
        order_id = await _submit(stack, {**payload, "external_id": f"{payload['external_id']}x"})
        payload["external_id"] += "x"
        order = await stack.wait_for_status(order_id, "COMPLETED")
        [shipment] = order["shipments"]
        codes.append(shipment["tracking_number"])
        assert shipment["tracking_number"] != collection_code(shipment["shipment_id"])
    assert all(len(code) == len("COL-") + 8 for code in codes)
    assert codes[0] != codes[1]


async def test_a_support_retry_may_use_a_node_that_once_rejected_the_order(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, {"near": {"type": "warehouse"}}, {("near", "tee"): 5}
    )
    await stack.set_node_mode(net.node("near"), "reject")
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    backordered = await stack.wait_for_status(order_id, "BACKORDERED")
    assert backordered["excluded_nodes"] == [net.node("near")]
    assert backordered["deadline"] is not None  # it re-checks the stock on its own
    await stack.set_node_mode(net.node("near"), "normal")

    retried = await stack.http.post(f"/v1/orders/{order_id}/retry", json={"reason": "fixed"})

    assert retried.status_code == 200, retried.text
    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert order["shipments"][-1]["node_id"] == net.node("near")


async def test_a_ledger_step_that_cannot_succeed_flags_the_order_instead_of_wedging_it(
    stack,
) -> None:
    # A per-node SLA the allocation refuses (ValidationError): no retry can make it pass.
    near = {"type": "warehouse", "accept_sla_seconds": -1}
    net = build_network(stack.engine, stack.simulator_url, {"near": near}, {("near", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))

    flagged = await _wait_for(stack, order_id, "flagged", lambda o: bool(o.get("attention")))
    assert flagged["status"] == "BACKORDERED"
    assert "allocation cannot run" in flagged["attention"]
    assert await _needs_attention_in_temporal(stack, order_id)
    acknowledged = await stack.http.post(
        f"/v1/orders/{order_id}/acknowledge", json={"reason": "fixing the SLA"}
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert (await stack.http.get(f"/v1/orders/{order_id}")).json()["attention"] is None
    with transaction(stack.engine) as session:
        node = session.get(Node, net.node("near"))
        assert node is not None
        node.accept_sla_seconds = None
        session.add(node)

    retried = await stack.http.post(f"/v1/orders/{order_id}/retry", json={"reason": "SLA fixed"})

    assert retried.status_code == 200, retried.text
    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert order["attention"] is None
    assert_ledger_balances(stack.engine, [order_id])


async def test_a_late_shipment_while_backordered_completes_the_order(stack, scripted) -> None:
    net = _network(stack, scripted, ONE_SECOND_PICK, {("near", "tee"): 5, ("far", "tee"): 0})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))
    await _node_says(stack, net, order_id, s1, "accepted")
    await stack.wait_for_status(order_id, "BACKORDERED")  # timed out, and no other node has it

    await _node_says(stack, net, order_id, s1, "shipped", tracking_number="NODE-2")

    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert order["shipments"][0]["status"] == "SHIPPED"
    assert _position(stack, net.node("near"), net.sku("tee")) == (4, 0)
    assert_ledger_balances(stack.engine, [order_id])


async def test_a_cancel_does_not_wait_for_a_carrier_that_is_down(stack, scripted) -> None:
    net = _network(stack, scripted, {"type": "warehouse", "km_east": 5}, {("near", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))
    await _node_says(stack, net, order_id, s1, "accepted")
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        await sim.put("/sim/carrier/outage", json={"seconds": 120})
        try:
            await _node_says(stack, net, order_id, s1, "picked")
            await _wait_for(stack, order_id, "buying", lambda o: "label" in o["waiting_for"])

            cancelled = await stack.http.post(
                f"/v1/orders/{order_id}/cancel", json={"reason": "customer"}
            )
        finally:
            await sim.put("/sim/carrier/outage", json={"seconds": 0})

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    assert scripted.calls[f"cancel:{s1}"] == 1
    assert _position(stack, net.node("near"), net.sku("tee")) == (5, 0)


async def test_a_moved_shipment_shipped_after_the_order_closed_is_reconciled_and_flagged(
    stack, scripted
) -> None:
    net = _network(stack, scripted, ONE_SECOND_PICK, {("near", "tee"): 5, ("far", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    s1 = f"{order_id}-S1"
    await _wait_for(stack, order_id, "released", _shipment_is(0, "RELEASED"))
    await _node_says(stack, net, order_id, s1, "accepted")
    await stack.wait_for_status(order_id, "COMPLETED")  # timed out at near, shipped from far

    await _node_says(stack, net, order_id, s1, "shipped", tracking_number="NODE-3")

    order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
    assert order["shipments"][0]["status"] == "SHIPPED"
    assert "a double shipment to intercept" in order["attention"]
    assert _position(stack, net.node("near"), net.sku("tee")) == (4, 0)
    assert_ledger_balances(stack.engine, [order_id])
    ack = {"reason": "customer keeps both, invoiced"}
    acknowledged = await stack.http.post(f"/v1/orders/{order_id}/acknowledge", json=ack)
    assert acknowledged.status_code == 200, acknowledged.text
    assert (await stack.http.get(f"/v1/orders/{order_id}")).json()["attention"] is None
    again = await stack.http.post(f"/v1/orders/{order_id}/acknowledge", json=ack)
    assert again.status_code == 409
