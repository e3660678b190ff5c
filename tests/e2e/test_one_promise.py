"""One promise from checkout to doorstep: the option the checkout quotes is what the order gets
(the same nodes, lines and dates), with a hold or naming the option without one; when stock moved
in between, the order keeps the promised date (by express if it must) or records it at risk."""

import itertools

from ledger.db import transaction
from ledger.stock import adjust_on_hand
from tests.support.network import CUSTOMER, build_network
from tests.support.orders_api import order_payload

PLACED = ("ALLOCATED", "RELEASED", "IN_FULFILLMENT", "PARTIALLY_SHIPPED", "COMPLETED")
NETWORK = {
    "store": {"type": "store", "km_east": 3, "can_pickup": True},
    "city-wh": {"type": "warehouse", "km_east": 40},
    "region-dc": {"type": "dc", "km_east": 400},
    "far-wh": {"type": "warehouse", "km_east": 1400},
}
STOCK = {
    ("store", "tee"): 40, ("store", "cap"): 40,
    ("city-wh", "tee"): 40, ("city-wh", "mug"): 40,
    ("region-dc", "tee"): 40, ("region-dc", "cap"): 40, ("region-dc", "mug"): 40,
    ("far-wh", "tee"): 40, ("far-wh", "cap"): 40, ("far-wh", "mug"): 40, ("far-wh", "bag"): 40,
}  # fmt: skip
CARTS = [[("tee", 1)], [("tee", 1), ("cap", 1)], [("mug", 2), ("cap", 1)], [("bag", 1), ("tee", 1)]]
DESTINATIONS_KM_EAST = [0, 60, 390]


def _where(km_east: float) -> dict:
    return {"lat": CUSTOMER["lat"], "lon": CUSTOMER["lon"] + km_east / 78.0}


def _plan(shipments: list[dict]) -> set[tuple[str, int, str | None, str | None]]:
    return {
        (s["node_id"], ln["line_no"], s.get("ship_by"), s.get("promised_date"))
        for s in shipments
        for ln in s["lines"]
    }


async def _quote(stack, net, cart, where: dict, hold_option: str | None = None) -> dict:
    body = {
        "channel": "web",
        "destination": where,
        "lines": [
            {"line_no": i, "sku": net.sku(sku), "quantity": qty}
            for i, (sku, qty) in enumerate(cart, start=1)
        ],
    }
    if hold_option is not None:
        body |= {"hold": True, "hold_option": hold_option}
    response = await stack.http.post("/v1/checkout/check", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _order(stack, net, cart, where: dict, option: dict, hold_id: str | None) -> dict:
    overrides: dict = {"ship_to": {**order_payload(net, cart)["ship_to"], "location": where}}
    if option["code"] == "pickup":
        overrides |= {"delivery_method": "pickup", "pickup_node_id": option["pickup_node_id"]}
    if hold_id is not None:
        overrides["hold_id"] = hold_id  # the hold brings its option and date
    else:
        overrides |= {"delivery_option": option["code"], "promised_date": option["promised_date"]}
    response = await stack.http.post("/v1/orders", json=order_payload(net, cart, **overrides))
    assert response.status_code == 201, response.text
    return await stack.wait_for_status(response.json()["order_id"], *PLACED)


async def test_every_quoted_option_is_the_plan_and_date_the_order_gets(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NETWORK, STOCK)
    checked = 0
    for cart, km, held in itertools.product(CARTS, DESTINATIONS_KM_EAST, (False, True)):
        where = _where(km)
        answer = await _quote(stack, net, cart, where)
        for quoted in answer["options"]:
            option = quoted
            hold_id = None
            if held:
                placed = await _quote(stack, net, cart, where, hold_option=quoted["code"])
                option = next(o for o in placed["options"] if o["code"] == quoted["code"])
                hold_id = placed["hold"]["hold_id"]
            order = await _order(stack, net, cart, where, option, hold_id)

            assert _plan(order["shipments"]) == _plan(option["shipments"]), (cart, km, option)
            promise = order["promise"]
            assert promise["promised_date"] == option["promised_date"]
            assert promise["planned_date"] == option["promised_date"]
            assert promise["option"] == option["code"] and not promise["at_risk"]
            services = {(s["node_id"], s["service"]) for s in order["shipments"]}
            assert services == {(s["node_id"], s["service"]) for s in option["shipments"]}
            checked += 1
    # Every cart is sellable everywhere: fast and economy each time, pickup near the store.
    assert checked >= len(CARTS) * len(DESTINATIONS_KM_EAST) * 2 * 2


async def test_stock_gone_from_the_quoted_node_keeps_the_date_by_express(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url,
        {"near": {"type": "warehouse", "km_east": 5}, "mid": {"type": "warehouse", "km_east": 600}},
        {("near", "tee"): 1, ("mid", "tee"): 5},
    )  # fmt: skip
    answer = await _quote(stack, net, [("tee", 1)], _where(0))
    economy = next(o for o in answer["options"] if o["code"] == "home_economy")
    assert economy["shipments"][0]["node_id"] == net.node("near")
    with transaction(stack.engine) as session:  # the last unit sold elsewhere meanwhile
        adjust_on_hand(session, net.node("near"), net.sku("tee"), -1)

    order = await _order(stack, net, [("tee", 1)], _where(0), economy, None)

    [shipment] = order["shipments"]
    assert shipment["node_id"] == net.node("mid") and shipment["service"] == "express"
    assert order["promise"]["promised_date"] == economy["promised_date"]
    assert not order["promise"]["at_risk"]
    assert "keep the promised date" in order["timeline"][1]["detail"]


async def test_a_date_no_node_can_keep_any_more_is_recorded_at_risk(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url,
        {"near": {"type": "warehouse", "km_east": 5},
         "far": {"type": "warehouse", "km_east": 3000}},
        {("near", "tee"): 1, ("far", "tee"): 5},
    )  # fmt: skip
    answer = await _quote(stack, net, [("tee", 1)], _where(0))
    fast = next(o for o in answer["options"] if o["code"] == "home_fast")
    with transaction(stack.engine) as session:
        adjust_on_hand(session, net.node("near"), net.sku("tee"), -1)

    order = await _order(stack, net, [("tee", 1)], _where(0), fast, None)

    promise = order["promise"]
    assert promise["at_risk"] and promise["promised_date"] == fast["promised_date"]
    assert promise["planned_date"] > fast["promised_date"]
    assert order["shipments"][0]["node_id"] == net.node("far")
    at_risk = [e for e in order["timeline"] if e["event"] == "promise at risk"]
    assert at_risk and fast["promised_date"] in at_risk[0]["detail"]
