"""Orders grouped into fewer parcels through the whole stack (issue 14, item 6): two orders of
one customer to one address, on a channel with a consolidation window, at one node, wait for
the window and leave as one parcel with one label (one carrier purchase), each order completing
with its own status and timeline; cancelling one before release leaves the other's shipment
and label intact; another address, or another carrier service (a fast order and an economy
one), makes two parcels.

The channel's window is in production seconds and scaled like the SLAs (TEST_SLA_SCALE), so a
300 s window lasts 3 s here."""

import uuid

from tests.support.network import build_network
from tests.support.orders_api import order_payload, submit_order

ONE_WAREHOUSE = {"near": {"type": "warehouse", "km_east": 5}}
WINDOW = 300.0  # seconds, as configured; 3 s under the tests' SLA scale


async def _channel(stack, window: float = WINDOW) -> str:
    channel = f"web-{uuid.uuid4().hex[:8]}"
    body = {"name": "Web shop", "channel_type": "dtc", "consolidation_window_seconds": window}
    created = await stack.http.put(f"/v1/channels/{channel}", json=body)
    assert created.status_code in (200, 201), created.text
    assert created.json()["consolidation_window_seconds"] == window
    return channel


def _events(order: dict, event: str) -> list[dict]:
    return [e for e in order["timeline"] if e["event"] == event]


async def _grouped(stack, order_id: str) -> dict:
    return await stack.wait_for_status(order_id, "ALLOCATED", "RELEASED", "COMPLETED")


async def test_two_orders_of_one_customer_to_one_address_ship_as_one_parcel_with_one_label(
    stack,
) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 10})
    channel = await _channel(stack)
    first = await submit_order(stack, order_payload(net, [("tee", 1)], channel=channel))
    second = await submit_order(stack, order_payload(net, [("tee", 2)], channel=channel))

    done = [await stack.wait_for_status(o, "COMPLETED") for o in (first, second)]

    [a], [b] = (order["shipments"] for order in done)
    assert a["parcel_id"] is not None and a["parcel_id"] == b["parcel_id"]
    assert (a["tracking_number"], a["label_id"]) == (b["tracking_number"], b["label_id"])
    stats = await stack.sim_stats()
    # One purchase, keyed by the parcel: neither shipment bought a label of its own.
    assert stats["labels"][a["parcel_id"]]["tracking_number"] == a["tracking_number"]
    assert a["shipment_id"] not in stats["labels"] and b["shipment_id"] not in stats["labels"]
    assert stats["counts"][f"label_request:{a['parcel_id']}"] == 1
    # Each order has its own timeline: both grouped, the later one naming the earlier.
    [one], [two] = (_events(order, "grouped") for order in done)
    assert first in two["detail"] or second in one["detail"], (one, two)
    shared = [e["detail"] for order in done for e in _events(order, "parcel")]
    assert any("shares the label" in d for d in shared), shared
    assert any("bought the label" in d for d in shared), shared


async def test_cancelling_one_grouped_order_before_release_leaves_the_others_parcel_intact(
    stack,
) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 10})
    channel = await _channel(stack, window=600.0)
    kept = await submit_order(stack, order_payload(net, [("tee", 1)], channel=channel))
    dropped = await submit_order(stack, order_payload(net, [("tee", 2)], channel=channel))
    waiting = await _grouped(stack, dropped)
    assert waiting["status"] == "ALLOCATED", waiting["timeline"]  # held for the parcel

    cancelled = await stack.http.post(
        f"/v1/orders/{dropped}/cancel", json={"reason": "customer changed their mind"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    done = await stack.wait_for_status(kept, "COMPLETED")

    [shipment] = done["shipments"]
    assert shipment["status"] in ("SHIPPED", "DELIVERED") and shipment["tracking_number"]
    gone = (await stack.http.get(f"/v1/orders/{dropped}")).json()
    [left] = gone["shipments"]
    assert left["status"] == "CANCELLED" and left["tracking_number"] is None
    assert any("left parcel" in e["detail"] for e in _events(gone, "parcel"))
    stats = await stack.sim_stats()
    assert left["shipment_id"] not in stats["releases"]  # its node never saw it
    assert stats["labels"][shipment["parcel_id"]]["label_id"] == shipment["label_id"]


async def test_orders_to_two_addresses_ship_as_two_parcels(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 10})
    channel = await _channel(stack)
    home = order_payload(net, [("tee", 1)], channel=channel)
    office = order_payload(net, [("tee", 1)], channel=channel)
    office["ship_to"] = {**office["ship_to"], "line1": "20 Rue de la République"}
    orders = [await submit_order(stack, home), await submit_order(stack, office)]

    done = [await stack.wait_for_status(o, "COMPLETED") for o in orders]

    [a], [b] = (order["shipments"] for order in done)
    assert a["parcel_id"] != b["parcel_id"]
    assert a["tracking_number"] != b["tracking_number"]


async def test_a_fast_and_an_economy_order_of_one_customer_to_one_address_and_node_are_two_parcels(
    stack,
) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 10})
    channel = await _channel(stack)
    base = order_payload(net, [("tee", 1)], channel=channel)
    quote = {
        "channel": channel,
        "destination": base["ship_to"]["location"],
        "lines": base["lines"],
    }
    checked = await stack.http.post("/v1/checkout/check", json=quote)
    assert checked.status_code == 200, checked.text
    options = {o["code"]: o for o in checked.json()["options"]}
    orders = [
        await submit_order(
            stack,
            order_payload(
                net,
                [("tee", 1)],
                channel=channel,
                delivery_option=code,
                promised_date=options[code]["promised_date"],
            ),
        )
        for code in ("home_fast", "home_economy")
    ]

    fast, economy = [await stack.wait_for_status(o, "COMPLETED") for o in orders]

    [a], [b] = fast["shipments"], economy["shipments"]
    assert a["node_id"] == b["node_id"]
    assert a["service"] == options["home_fast"]["shipments"][0]["service"] != b["service"]
    assert a["parcel_id"] != b["parcel_id"] and a["tracking_number"] != b["tracking_number"]
    assert not fast["promise"]["at_risk"], fast["promise"]


async def test_a_negative_or_longer_than_a_week_consolidation_window_is_refused_naming_the_field(
    stack,
) -> None:
    for window in (-1, 8 * 24 * 3600):
        body = {"name": "Web", "channel_type": "dtc", "consolidation_window_seconds": window}
        refused = await stack.http.put(f"/v1/channels/web-{uuid.uuid4().hex[:6]}", json=body)
        assert refused.status_code == 422, refused.text
        assert "consolidation_window_seconds" in refused.text
