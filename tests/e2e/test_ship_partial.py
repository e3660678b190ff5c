"""Ship-partial and ship-complete through the whole stack: a ship-partial order ships what can
go now and completes the rest when its stock arrives (a feed delta, the sweep's retry); a
ship-complete order waits for every line, then follows its rule at its deadline (split or ask);
an order that names no policy takes its channel's."""

import asyncio
import uuid
from datetime import UTC, datetime

from tests.support.housekeeping_runs import run_housekeeping
from tests.support.network import build_network
from tests.support.orders_api import order_payload

ONE_WAREHOUSE = {"near": {"type": "warehouse", "km_east": 5}}
LEFT = ("SHIPPED", "DELIVERED")  # the simulated carrier delivers within moments


async def _submit(stack, payload: dict) -> str:
    response = await stack.http.post("/v1/orders", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


def _progress(order: dict) -> dict[int, tuple[int, int, int]]:
    return {
        p["line_no"]: (p["allocated"], p["shipped"], p["backordered"])
        for p in order["line_progress"]
    }


async def _channel(stack, **fulfilment: object) -> str:
    channel = f"b2b-{uuid.uuid4().hex[:8]}"
    body = {"name": "B2B portal", "channel_type": "b2b", **fulfilment}
    created = await stack.http.put(f"/v1/channels/{channel}", json=body)
    assert created.status_code in (200, 201), created.text
    return channel


async def _wait_until(stack, order_id: str, check, deadline_seconds: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_seconds
    order: dict = {}
    while loop.time() < until:
        response = await stack.http.get(f"/v1/orders/{order_id}")
        if response.status_code == 200:
            order = response.json()
            if check(order):
                return order
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"{order_id} never got there: {order.get('status')} {order.get('timeline')}"
    )


async def test_ship_partial_ships_the_available_units_and_completes_the_rest_when_stock_arrives(
    stack,
) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 2, ("near", "cap"): 0}
    )
    payload = order_payload(net, [("tee", 2), ("cap", 3)], fulfilment_policy="ship_partial")
    order_id = await _submit(stack, payload)

    # The tee line ships; the cap line waits, and the order says so.
    shipped = await _wait_until(
        stack,
        order_id,
        lambda o: (
            o["status"] == "PARTIALLY_BACKORDERED"
            and any(s["status"] in LEFT for s in o["shipments"])
        ),
    )
    assert [s["lines"][0]["sku"] for s in shipped["shipments"]] == [net.sku("tee")]
    assert _progress(shipped) == {1: (0, 2, 0), 2: (0, 0, 3)}

    delta = {
        "event_id": f"GR-{net.prefix}",
        "node_id": net.node("near"),
        "sku": net.sku("cap"),
        "delta": 3,
        "as_of": datetime.now(UTC).isoformat(),
    }
    fed = await stack.http.post("/v1/feeds/erp/deltas", json={"deltas": [delta]})
    assert fed.status_code == 200, fed.text
    swept = await run_housekeeping(stack)

    assert order_id in swept.backorders_retried
    done = await stack.wait_for_status(order_id, "COMPLETED")
    assert [s["lines"][0]["sku"] for s in done["shipments"]] == [net.sku("tee"), net.sku("cap")]
    assert all(s["status"] in LEFT for s in done["shipments"])
    assert _progress(done) == {1: (0, 2, 0), 2: (0, 3, 0)}


async def test_ship_complete_waits_for_every_line_then_splits_at_its_deadline_as_its_channel_says(
    stack,
) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 2, ("near", "cap"): 0}
    )
    # The channel's rule: ship-complete, 4 s of waiting (3 days by default), then split.
    channel = await _channel(
        stack, fulfilment_policy="ship_complete", ship_complete_wait_seconds=4,
        ship_complete_then="split",
    )  # fmt: skip
    order_id = await _submit(stack, order_payload(net, [("tee", 2), ("cap", 3)], channel=channel))
    waiting = await stack.wait_for_status(order_id, "BACKORDERED")
    assert waiting["order"]["ship_complete_then"] == "split"
    assert waiting["shipments"] == []  # nothing goes before every line can

    split = await _wait_until(
        stack, order_id, lambda o: any(s["status"] in LEFT for s in o["shipments"])
    )
    assert split["status"] == "PARTIALLY_BACKORDERED"
    assert [e["event"] for e in split["timeline"]].count("ship-complete deadline") == 1
    assert _progress(split) == {1: (0, 2, 0), 2: (0, 0, 3)}


async def test_ship_complete_asks_a_person_at_its_deadline_when_its_rule_says_ask(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 2, ("near", "cap"): 0}
    )
    payload = order_payload(
        net,
        [("tee", 2), ("cap", 3)],
        fulfilment_policy="ship_complete",
        ship_complete_wait_seconds=3,
    )
    order_id = await _submit(stack, payload)
    asked = await _wait_until(
        stack, order_id, lambda o: "ship-complete order" in (o.get("attention") or "")
    )
    assert asked["status"] == "BACKORDERED"
    assert asked["shipments"] == []  # still whole: a person decides


async def test_an_order_naming_no_policy_takes_its_channels(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 2, ("near", "cap"): 0}
    )
    channel = await _channel(stack, fulfilment_policy="ship_partial")
    order_id = await _submit(stack, order_payload(net, [("tee", 2), ("cap", 3)], channel=channel))

    order = await stack.wait_for_status(order_id, "PARTIALLY_BACKORDERED")
    assert order["order"]["fulfilment_policy"] == "ship_partial"
