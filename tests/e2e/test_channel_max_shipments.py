"""A channel's maximum shipments per order through the whole stack: set with PUT
/v1/channels/{channel}, an order of a channel limited to one shipment waits (backordered) for a
line no single node holds whole, while a channel allowing two divides it and completes."""

import uuid

from tests.support.network import build_network
from tests.support.orders_api import order_payload, submit_order

NODES = {"near": {"type": "warehouse", "km_east": 5}, "mid": {"type": "warehouse", "km_east": 40}}


async def _channel(stack, limit: int | None) -> str:
    channel = f"b2b-{uuid.uuid4().hex[:8]}"
    body = {"name": "B2B portal", "channel_type": "b2b", "max_shipments_per_order": limit}
    created = await stack.http.put(f"/v1/channels/{channel}", json=body)
    assert created.status_code in (200, 201), created.text
    assert created.json()["max_shipments_per_order"] == limit
    return channel


async def test_a_one_shipment_channel_backorders_a_line_a_two_shipment_channel_divides(
    stack,
) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, NODES, {("near", "tee"): 400, ("mid", "tee"): 300}
    )
    refused = await stack.http.put(
        "/v1/channels/b2b-bad",
        json={"name": "?", "channel_type": "b2b", "max_shipments_per_order": 0},
    )
    assert refused.status_code == 422 and "max_shipments_per_order" in refused.text
    one, two = await _channel(stack, 1), await _channel(stack, 2)

    waiting = await submit_order(
        stack, order_payload(net, [("tee", 678)], channel=one, order_type="b2b")
    )
    divided = await submit_order(
        stack, order_payload(net, [("tee", 678)], channel=two, order_type="b2b")
    )

    backordered = await stack.wait_for_status(waiting, "BACKORDERED")
    assert backordered["shipments"] == []
    done = await stack.wait_for_status(divided, "COMPLETED")
    pieces = sorted(
        (s["node_id"], sum(ln["quantity"] for ln in s["lines"])) for s in done["shipments"]
    )
    assert pieces == sorted([(net.node("near"), 400), (net.node("mid"), 278)])
