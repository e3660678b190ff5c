"""A node status change whose outage fan-out Temporal refuses to start answers 503 naming it,
keeps the status, and the next PUT starts the move (audit L1, node status)."""

import asyncio

from api.app import create_app
from stack.servers import ServerThread
from tests.support.network import build_network
from tests.support.orders_api import order_payload

NODES = {"a": {"km_east": 5}, "b": {"km_east": 50}}


async def test_a_fanout_temporal_refuses_answers_503_and_the_next_put_starts_it(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5, ("b", "tee"): 5}
    )
    await stack.set_node_mode(net.node("a"), "accept_only")
    response = await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))
    order_id = response.json()["order_id"]
    await stack.wait_for_status(order_id, "IN_FULFILLMENT")
    # An API whose Temporal namespace is gone: it connects, and every start is refused.
    broken = stack.settings.model_copy(update={"temporal_namespace": "no-such-namespace"})
    server = ServerThread(create_app(broken, checkout_fast_path=False)).start()
    down = {"status": "down", "reason": "flooded"}
    try:
        client = stack.client_for(stack.admin)
        client.base_url = server.url
        async with client:
            refused = await client.put(f"/v1/nodes/{net.node('a')}/status", json=down)
    finally:
        server.stop()

    assert refused.status_code == 503, refused.text
    assert refused.json()["error"] == "orchestrator_unavailable"
    assert "PUT" in refused.json()["message"]
    history = (await stack.http.get(f"/v1/nodes/{net.node('a')}/status-history")).json()
    assert history[0]["status"] == "down"

    again = await stack.http.put(f"/v1/nodes/{net.node('a')}/status", json=down)

    assert again.status_code == 200, again.text
    assert again.json()["reallocation_workflow_id"]
    for _ in range(300):
        order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
        if any(s["node_id"] == net.node("b") for s in order["shipments"]):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the order never moved off {net.node('a')}: {order}")
