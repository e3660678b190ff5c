"""A carrier's scans for a grouped parcel through the whole stack (issue 14 follow-up). The
parcel's one label is bought under the parcel's id, so a real carrier's scans name `P-…` and
its tracking number, not a shipment: each scan reaches every order in the parcel, the collected
scan each order's workflow, the delivered scan each order's read model once they completed, and
a resent scan changes nothing. A parcel id with another tracking number is not found.

The node picks and is handed the label but never ships nor has its own carrier scan sent
(`picks_only`): only the parcel's scans move the orders on."""

import time

from tests.e2e.test_callback_scope_and_late_events import _wait_for_shipment
from tests.e2e.test_parcel_grouping import ONE_WAREHOUSE, _channel, _events
from tests.support.network import build_network
from tests.support.orders_api import order_payload, submit_order


def _routes(answer) -> dict[str, str]:
    """`routed_to` of a parcel's scan: "shipment: route" per member, by shipment id."""
    return dict(part.split(": ") for part in answer.json()["routed_to"].split("; "))


async def test_a_grouped_parcels_scans_reach_every_order_in_it(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 10})
    await stack.set_node_mode(net.node("near"), "picks_only")
    channel = await _channel(stack)
    orders = [
        await submit_order(stack, order_payload(net, [("tee", 1)], channel=channel)),
        await submit_order(stack, order_payload(net, [("tee", 2)], channel=channel)),
    ]
    labelled = [await _wait_for_shipment(stack, o, "LABELLED") for o in orders]
    [a], [b] = (order["shipments"] for order in labelled)
    assert a["parcel_id"] is not None and a["parcel_id"] == b["parcel_id"]
    scan = {
        "order_id": orders[0],
        "shipment_id": a["parcel_id"],
        "tracking_number": a["tracking_number"],
    }
    path = f"/v1/callbacks/carriers/{a['carrier']}/events"

    collected = await stack.signed_post(path, {**scan, "event": "shipped"})

    assert collected.status_code == 202, collected.text
    assert _routes(collected) == {a["shipment_id"]: "workflow", b["shipment_id"]: "workflow"}
    done = [await stack.wait_for_status(o, "COMPLETED") for o in orders]
    assert [order["shipments"][0]["status"] for order in done] == ["SHIPPED", "SHIPPED"]

    delivered = await stack.signed_post(path, {**scan, "event": "delivered"})
    # The carrier's resend, signed anew (the same signature twice is refused as a replay).
    again = await stack.signed_post(
        path, {**scan, "event": "delivered"}, timestamp=int(time.time()) - 1
    )

    assert delivered.status_code == 202, delivered.text
    assert _routes(delivered) == {
        a["shipment_id"]: "read_model",
        b["shipment_id"]: "read_model",
    }
    assert again.status_code == 202, again.text
    after = [(await stack.http.get(f"/v1/orders/{o}")).json() for o in orders]
    assert [order["shipments"][0]["status"] for order in after] == ["DELIVERED", "DELIVERED"]
    assert [len(_events(order, "delivered")) for order in after] == [1, 1]  # the resend: none

    wrong = await stack.signed_post(
        path, {**scan, "tracking_number": "NOT-ITS", "event": "delivered"}
    )
    assert wrong.status_code == 404, wrong.text
    assert wrong.json()["error"] == "shipment_not_found"
