"""Backorders that resolve themselves, through the whole stack: stock arrives (an ERP delta, a
cancelled order's released reservation), the housekeeping run's sweep retries the order, and it
completes with no retry from a person; a node that rejected an order long ago serves it again."""

import asyncio
import uuid
from datetime import UTC, datetime

from contracts.starters import run_housekeeping_now, start_order
from domain.orders import Order
from tests.support.housekeeping_runs import run_housekeeping
from tests.support.network import build_network
from tests.support.orders_api import order_payload
from worker import order_worker

ONE_WAREHOUSE = {"near": {"type": "warehouse", "km_east": 5}}


async def _submit(stack, payload: dict) -> str:
    response = await stack.http.post("/v1/orders", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


def _events(order: dict, event: str) -> list[str]:
    return [e["detail"] for e in order["timeline"] if e["event"] == event]


async def test_a_backordered_order_completes_when_a_delta_brings_its_stock(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 0})
    order_id = await _submit(stack, order_payload(net, [("tee", 2)]))
    await stack.wait_for_status(order_id, "BACKORDERED")
    nothing_yet = await run_housekeeping(stack)
    assert order_id not in nothing_yet.backorders_retried

    delta = {
        "event_id": f"GR-{net.prefix}",
        "node_id": net.node("near"),
        "sku": net.sku("tee"),
        "delta": 2,
        "as_of": datetime.now(UTC).isoformat(),
    }
    fed = await stack.http.post("/v1/feeds/erp/deltas", json={"deltas": [delta]})
    assert fed.status_code == 200, fed.text
    swept = await run_housekeeping(stack)  # what the Schedule runs every few seconds

    assert order_id in swept.backorders_retried
    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert _events(order, "retry") == [f"stock arrived: {net.sku('tee')}"]  # nobody else's
    assert order["shipments"][-1]["node_id"] == net.node("near")


async def test_a_cancelled_order_gives_its_stock_to_the_order_waiting_for_it(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 1})
    await stack.set_node_mode(net.node("near"), "accept_only")  # the first order waits there
    first = await _submit(stack, order_payload(net, [("tee", 1)]))
    await stack.wait_for_status(first, "IN_FULFILLMENT")
    second = await _submit(stack, order_payload(net, [("tee", 1)]))
    await stack.wait_for_status(second, "BACKORDERED")
    await stack.set_node_mode(net.node("near"), "normal")

    cancelled = await stack.http.post(f"/v1/orders/{first}/cancel", json={"reason": "customer"})
    assert cancelled.status_code == 200, cancelled.text
    swept = await run_housekeeping(stack)

    assert second in swept.backorders_retried
    order = await stack.wait_for_status(second, "COMPLETED")
    assert _events(order, "retry") == [f"stock arrived: {net.sku('tee')}"]


async def test_a_node_that_rejected_an_order_long_ago_serves_it_again(stack) -> None:
    # A worker of its own, where "long ago" is 8 seconds: its allocations tell the order so.
    forget = 8.0
    settings = stack.settings.model_copy(
        update={
            "task_queue": f"backorders-{uuid.uuid4().hex[:8]}",
            "exclusion_forget_seconds": forget,
        }
    )
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 5})
    await stack.set_node_mode(net.node("near"), "reject")
    payload = order_payload(net, [("tee", 1)])
    order = Order(
        order_id=f"order-{payload['channel']}-{payload['external_id']}",
        submitted_at=datetime.now(UTC),
        **payload,
    )
    async with order_worker(stack.client, settings):
        assert await start_order(stack.client, order, settings.task_queue)
        backordered = await stack.wait_for_status(order.order_id, "BACKORDERED")
        assert backordered["excluded_nodes"] == [net.node("near")]
        excluded_at = datetime.fromisoformat(backordered["excluded_at"][net.node("near")])
        await stack.set_node_mode(net.node("near"), "normal")

        async def housekeeping() -> list[str]:
            run = f"housekeeping-test-{uuid.uuid4().hex[:6]}"
            done = await run_housekeeping_now(stack.client, run, settings.task_queue)
            return done.backorders_retried

        if (datetime.now(UTC) - excluded_at).total_seconds() < forget - 3:
            # Its stock is there, but the node failed it a moment ago: not yet.
            assert order.order_id not in await housekeeping()
            assert (await stack.http.get(f"/v1/orders/{order.order_id}")).json()[
                "status"
            ] == "BACKORDERED"
        wait = forget + 0.5 - (datetime.now(UTC) - excluded_at).total_seconds()
        await asyncio.sleep(max(wait, 0))

        assert order.order_id in await housekeeping()
        done = await stack.wait_for_status(order.order_id, "COMPLETED")

    near = net.node("near")
    first, second = done["shipments"]
    assert (first["node_id"], first["status"]) == (near, "REJECTED")
    assert second["node_id"] == near
    [retry] = _events(done, "retry")  # its stock came back when the node rejected it, too
    assert f"exclusion expired: {near}" in retry
    assert len(_events(done, "exclusion expired")) == 1
    assert done["excluded_nodes"] == [] and done["excluded_at"] == {}


async def test_stock_arriving_elsewhere_does_not_send_the_order_back_to_a_node_that_just_failed_it(
    stack,
) -> None:
    nodes = {**ONE_WAREHOUSE, "far": {"type": "warehouse", "km_east": 300}}
    net = build_network(
        stack.engine, stack.simulator_url, nodes, {("near", "tee"): 5, ("far", "tee"): 0}
    )
    await stack.set_node_mode(net.node("near"), "reject")
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    await stack.wait_for_status(order_id, "BACKORDERED")
    await stack.set_node_mode(net.node("near"), "normal")
    nothing_yet = await run_housekeeping(stack)  # near has stock, but it failed the order
    assert order_id not in nothing_yet.backorders_retried

    delta = {
        "event_id": f"GR-{net.prefix}",
        "node_id": net.node("far"),
        "sku": net.sku("tee"),
        "delta": 1,
        "as_of": datetime.now(UTC).isoformat(),
    }
    assert (await stack.http.post("/v1/feeds/erp/deltas", json={"deltas": [delta]})).is_success
    assert order_id in (await run_housekeeping(stack)).backorders_retried

    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert [s["node_id"] for s in order["shipments"]] == [net.node("near"), net.node("far")]
    assert order["excluded_nodes"] == [net.node("near")]  # a retry by a person would forget it
