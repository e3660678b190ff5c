"""Bad input gets a 4xx whose message names the problem, and changes nothing."""

import pytest

from tests.support.network import build_network
from tests.support.orders_api import order_payload

NODES = {"near": {"type": "warehouse", "km_east": 5}, "shop": {"type": "store", "km_east": 1}}


@pytest.fixture
def net(stack):
    return build_network(stack.engine, stack.simulator_url, NODES, {("near", "tee"): 5})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.pop("lines"), "lines"),
        (lambda p: p.update(lines=[]), "lines"),
        (lambda p: p["lines"][0].update(quantity=-1), "lines.0.quantity"),
        (lambda p: p["lines"][0].pop("sku"), "lines.0.sku"),
        (lambda p: p.update(order_type="barter"), "order_type"),
        (lambda p: p.update(priority=42), "priority"),
        (lambda p: p["ship_to"]["location"].update(lat=123), "ship_to.location.lat"),
        (lambda p: p.update(channel="web shop!"), "channel"),
        (lambda p: p.update(surprise=True), "surprise"),
        (lambda p: p.update(delivery_option="pickup"), "delivery_option"),  # a home order
        (lambda p: p.update(promised_date="next week"), "promised_date"),
        (lambda p: p.update(requested_not_before="2062-12-01"), "requested_not_before"),
    ],
)
async def test_invalid_order_is_refused_with_422_naming_the_field(stack, net, change, field):
    payload = order_payload(net, [("tee", 1)])
    change(payload)

    response = await stack.http.post("/v1/orders", json=payload)

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert field in body["message"]
    assert field in [d["field"] for d in body["detail"]]


async def test_unknown_sku_is_refused_with_422_naming_it(stack, net) -> None:
    payload = order_payload(net, [("tee", 1)])
    payload["lines"].append({"line_no": 2, "sku": "NO-SUCH-SKU", "quantity": 1})

    response = await stack.http.post("/v1/orders", json=payload)

    assert response.status_code == 422
    assert "NO-SUCH-SKU" in response.json()["message"]
    assert "lines.sku" in response.json()["message"]
    not_started = await stack.http.get(f"/v1/orders/order-web-{payload['external_id']}")
    assert not_started.status_code == 404


async def test_duplicate_line_numbers_and_pickup_without_store_are_refused(stack, net) -> None:
    payload = order_payload(net, [("tee", 1), ("tee", 2)])
    payload["lines"][1]["line_no"] = 1
    duplicate_lines = await stack.http.post("/v1/orders", json=payload)
    pickup = await stack.http.post(
        "/v1/orders", json=order_payload(net, [("tee", 1)], delivery_method="pickup")
    )
    wrong_store = await stack.http.post(
        "/v1/orders",
        json=order_payload(
            net, [("tee", 1)], delivery_method="pickup", pickup_node_id=net.node("near")
        ),
    )

    assert duplicate_lines.status_code == 422
    assert "line_no 1 appears more than once" in duplicate_lines.json()["message"]
    assert pickup.status_code == 422 and "pickup_node_id" in pickup.json()["message"]
    assert wrong_store.status_code == 422 and "not a pickup node" in wrong_store.json()["message"]


async def test_unknown_order_is_404_for_reads_actions_and_callbacks(stack) -> None:
    missing = "order-web-does-not-exist"

    read = await stack.http.get(f"/v1/orders/{missing}")
    cancel = await stack.http.post(f"/v1/orders/{missing}/cancel", json={"reason": "x"})
    callback = await stack.signed_post(
        "/v1/callbacks/nodes/N1/events",
        {"order_id": missing, "shipment_id": f"{missing}-S1", "event": "accepted"},
    )

    assert [read.status_code, cancel.status_code, callback.status_code] == [404, 404, 404]
    assert missing in read.json()["message"]


async def test_support_action_without_reason_is_refused(stack) -> None:
    response = await stack.http.post("/v1/orders/order-web-x/cancel", json={})

    assert response.status_code == 422
    assert "reason" in response.json()["message"]


async def test_stock_adjustment_below_reserved_or_unknown_position_is_refused(stack, net) -> None:
    too_much = {"node_id": net.node("near"), "sku": net.sku("tee"), "delta": -6, "reason": "count"}
    unknown = {"node_id": net.node("shop"), "sku": net.sku("tee"), "delta": 1, "reason": "count"}

    below = await stack.http.post("/v1/inventory/adjustments", json=too_much)
    missing = await stack.http.post("/v1/inventory/adjustments", json=unknown)

    assert below.status_code == 409 and "below what is reserved" in below.json()["message"]
    assert missing.status_code == 404 and net.node("shop") in missing.json()["message"]
    positions = (await stack.http.get(f"/v1/inventory/{net.sku('tee')}")).json()
    assert [(p["node_id"], p["on_hand"]) for p in positions] == [(net.node("near"), 5)]
