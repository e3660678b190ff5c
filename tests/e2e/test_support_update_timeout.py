"""A support action the order's workflow cannot finish quickly (a carrier outage holds the
shipment's label) answers within the update timeout, saying it runs on and how to follow it;
never a hang, never a 500 (audit M11)."""

import asyncio

import httpx

from api.workflow_calls import DEFAULT_UPDATE_TIMEOUT_SECONDS
from simulators.app import SimulatorConfig
from tests.support.network import build_network
from tests.support.orders_api import order_payload

NODES = {"a": {"km_east": 5}}


async def _configure_simulators(stack, failure_rate: float) -> None:
    config = SimulatorConfig(
        api_url=stack.api_url,
        latency_seconds=0.05,
        seed=7,
        api_key=stack.gateway.key,
        signing_secret=stack.gateway.signing_secret,
        failure_rate=failure_rate,
    )
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        (await sim.put("/sim/config", json=config.model_dump())).raise_for_status()


async def _wait_for_shipment(stack, order_id: str, status: str) -> dict:
    for _ in range(600):
        order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
        if order.get("shipments") and order["shipments"][0]["status"] == status:
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(f"{order_id}'s shipment never reached {status}: {order}")


async def test_a_cancel_stuck_behind_a_carrier_outage_answers_in_progress(stack) -> None:
    timeout = DEFAULT_UPDATE_TIMEOUT_SECONDS  # what the cancel route waits today
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    await stack.set_node_mode(net.node("a"), "accept_only")
    response = await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))
    order_id = response.json()["order_id"]
    order = await _wait_for_shipment(stack, order_id, "ACCEPTED")
    shipment_id = order["shipments"][0]["shipment_id"]
    await _configure_simulators(stack, failure_rate=1.0)  # the carrier (and node) answer 503
    try:
        picked = {"order_id": order_id, "shipment_id": shipment_id, "event": "picked"}
        sent = await stack.signed_post(f"/v1/callbacks/nodes/{net.node('a')}/events", picked)
        assert sent.status_code == 202, sent.text
        await _wait_for_shipment(stack, order_id, "PICKED")  # now buying a label, in vain

        loop = asyncio.get_running_loop()
        began = loop.time()
        cancel = await stack.http.post(
            f"/v1/orders/{order_id}/cancel", json={"reason": "customer"}, timeout=timeout + 10
        )
        took = loop.time() - began

        assert cancel.status_code == 202, cancel.text
        body = cancel.json()
        assert body["error"] == "in_progress"
        assert f"GET /v1/orders/{order_id}" in body["message"]
        assert took < timeout + 5
    finally:
        await _configure_simulators(stack, failure_rate=0.0)
    # The cancel ran on once the partners answered again: GET the order follows it.
    await stack.wait_for_status(order_id, "CANCELLED", deadline_seconds=120)
