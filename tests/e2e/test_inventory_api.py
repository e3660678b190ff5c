"""The stock view over HTTP: availability per channel, the checkout check and its holds, feeds."""

from datetime import UTC, datetime, timedelta

from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import CUSTOMER, build_network
from tests.support.orders_api import order_payload

NODES = {
    "dc": {"type": "warehouse", "km_east": 30},
    "shop": {"type": "store", "km_east": 2, "can_pickup": True},
}


def _network(stack, dc: int = 10, shop: int = 10):
    return build_network(
        stack.engine, stack.simulator_url, NODES, {("dc", "tee"): dc, ("shop", "tee"): shop}
    )


async def test_a_channel_pool_limits_what_a_marketplace_sees_of_store_stock(stack) -> None:
    net = _network(stack)
    channel = f"market-{net.prefix}"
    pool = {"share_by_node_type": {"store": 0.3}}
    assert (await stack.http.put(f"/v1/channels/{channel}/pool", json=pool)).status_code == 200

    everyone = await stack.http.get("/v1/availability", params={"sku": net.sku("tee")})
    market = await stack.http.get(
        "/v1/availability", params={"sku": net.sku("tee"), "channel": channel}
    )

    assert everyone.json()[0]["total"] == 20
    assert market.json()[0]["by_node"] == {net.node("dc"): 10, net.node("shop"): 3}


async def test_checkout_check_offers_dated_options_and_its_hold_becomes_the_order(stack) -> None:
    net = _network(stack, dc=10, shop=2)
    cart = {
        "channel": "web",
        "destination": CUSTOMER,
        "lines": [{"line_no": 1, "sku": net.sku("tee"), "quantity": 2}],
        "hold": True,
        "hold_option": "home_economy",
        "hold_ttl_seconds": 600,
    }

    response = await stack.http.post("/v1/checkout/check", json=cart)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["sellable"] is True and answer["lines"][0]["available"] is True
    options = {o["code"]: o for o in answer["options"]}
    assert set(options) == {"home_fast", "home_economy", "pickup"}
    assert options["home_fast"]["promised_date"] <= options["home_economy"]["promised_date"]
    assert options["pickup"]["pickup_node_id"] == net.node("shop")
    hold_id = answer["hold"]["hold_id"]
    # Economy is the cheapest plan: the warehouse 30 km out, not the store picking it 2 km away.
    [held] = options["home_economy"]["shipments"]
    assert held["node_id"] == net.node("dc")
    positions = (await stack.http.get(f"/v1/inventory/{net.sku('tee')}")).json()
    available = {p["node_id"]: p["available"] for p in positions}
    assert (available[net.node("dc")], available[net.node("shop")]) == (8, 2)

    payload = order_payload(net, [("tee", 2)], hold_id=hold_id)
    order_id = (await stack.http.post("/v1/orders", json=payload)).json()["order_id"]
    order = await stack.wait_for_status(order_id, "COMPLETED")

    assert "converted checkout hold" in order["timeline"][1]["detail"]
    assert order["shipments"][0]["node_id"] == net.node("dc")
    assert order["promise"]["option"] == "home_economy"
    assert order["promise"]["promised_date"] == options["home_economy"]["promised_date"]
    assert_ledger_balances(stack.engine, [order_id])


async def test_releasing_a_hold_gives_the_units_back(stack) -> None:
    net = _network(stack, dc=0, shop=3)
    cart = {
        "channel": "web",
        "destination": CUSTOMER,
        "lines": [{"line_no": 1, "sku": net.sku("tee"), "quantity": 2}],
        "hold": True,
    }
    hold_id = (await stack.http.post("/v1/checkout/check", json=cart)).json()["hold"]["hold_id"]

    released = await stack.http.post(f"/v1/holds/{hold_id}/release")
    again = await stack.http.post(f"/v1/holds/{hold_id}/release")

    assert released.json()["units_released"] == 2 and again.json()["units_released"] == 0
    availability = await stack.http.get("/v1/availability", params={"sku": net.sku("tee")})
    assert availability.json()[0]["total"] == 3
    assert_ledger_balances(stack.engine)


async def test_checkout_check_names_unknown_skus_and_bad_quantities(stack) -> None:
    cart = {"channel": "web", "destination": CUSTOMER, "lines": []}
    empty = await stack.http.post("/v1/checkout/check", json=cart)
    cart["lines"] = [{"line_no": 1, "sku": "NOPE", "quantity": 1}]
    unknown = await stack.http.post("/v1/checkout/check", json=cart)
    cart["lines"] = [{"line_no": 1, "sku": "NOPE", "quantity": -2}]
    negative = await stack.http.post("/v1/checkout/check", json=cart)

    assert empty.status_code == 422 and "lines" in empty.json()["message"]
    assert unknown.status_code == 422 and "NOPE" in unknown.json()["message"]
    assert negative.status_code == 422 and "lines.0.quantity" in negative.json()["message"]


async def test_a_feed_with_a_bad_line_applies_nothing_and_names_the_line(stack) -> None:
    net = _network(stack)
    now = datetime.now(UTC).isoformat()
    deltas = [
        {"event_id": f"{net.prefix}-1", "node_id": net.node("dc"), "sku": net.sku("tee"),
         "delta": 5, "as_of": now},
        {"event_id": f"{net.prefix}-2", "node_id": net.node("dc"), "sku": "GHOST",
         "delta": 1, "as_of": now},
    ]  # fmt: skip

    refused = await stack.http.post("/v1/feeds/erp/deltas", json={"deltas": deltas})
    partial = await stack.http.post(
        "/v1/feeds/erp/deltas", json={"deltas": deltas, "mode": "partial"}
    )
    replay = await stack.http.post(
        "/v1/feeds/erp/deltas", json={"deltas": deltas[:1], "mode": "partial"}
    )

    assert refused.status_code == 422
    assert "deltas[1]: unknown SKU GHOST" in refused.json()["message"]
    assert partial.status_code == 200
    assert partial.json()["applied"] == 1
    assert partial.json()["refused"] == [{"line": 1, "reason": "unknown SKU GHOST"}]
    assert replay.json() == {"applied": 0, "replayed": 1, "stale": 0, "refused": []}
    positions = (await stack.http.get(f"/v1/inventory/{net.sku('tee')}")).json()
    assert {p["node_id"]: p["on_hand"] for p in positions}[net.node("dc")] == 15


async def test_a_snapshot_push_replaces_on_hand_and_a_stale_one_is_ignored(stack) -> None:
    net = _network(stack)
    newer = datetime.now(UTC)
    snapshot = {
        "event_id": f"{net.prefix}-snap-2",
        "node_id": net.node("dc"),
        "as_of": newer.isoformat(),
        "positions": [{"sku": net.sku("tee"), "on_hand": 42}],
    }
    stale = {
        **snapshot,
        "event_id": f"{net.prefix}-snap-1",
        "as_of": (newer - timedelta(hours=1)).isoformat(),
        "positions": [{"sku": net.sku("tee"), "on_hand": 1}],
    }
    bad = {**snapshot, "event_id": "x", "positions": [{"sku": net.sku("tee"), "on_hand": -1}]}

    assert (await stack.http.post("/v1/feeds/wms/snapshots", json=snapshot)).status_code == 200
    assert (await stack.http.post("/v1/feeds/wms/snapshots", json=stale)).json()["stale"] == 1
    rejected = await stack.http.post("/v1/feeds/wms/snapshots", json=bad)

    assert rejected.status_code == 422 and "positions.0.on_hand" in rejected.json()["message"]
    positions = (await stack.http.get(f"/v1/inventory/{net.sku('tee')}")).json()
    assert {p["node_id"]: p["on_hand"] for p in positions}[net.node("dc")] == 42
    reconciliation = (await stack.http.get("/v1/inventory-reconciliation")).json()
    assert reconciliation == {"balanced": True, "drifts": []}
