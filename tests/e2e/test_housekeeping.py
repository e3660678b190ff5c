"""Housekeeping on the real stack: holds expire by themselves, polled ERP deltas arrive, and
channels hear when a SKU goes out of stock or comes back."""

import asyncio
from datetime import UTC, datetime

import httpx

from contracts.ids import HOUSEKEEPING_SCHEDULE_ID
from contracts.starters import ensure_housekeeping_schedule
from ledger.db import transaction
from ledger.tables import FeedSource
from tests.support.housekeeping_runs import run_housekeeping
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import CUSTOMER, build_network

NODES = {"dc": {"type": "warehouse", "km_east": 10}}


async def _on_hand(stack, sku: str) -> int:
    return (await stack.http.get(f"/v1/inventory/{sku}")).json()[0]["on_hand"]


async def test_an_expired_checkout_hold_gives_its_stock_back(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 2})
    cart = {
        "channel": "web",
        "destination": CUSTOMER,
        "lines": [{"line_no": 1, "sku": net.sku("tee"), "quantity": 2}],
        "hold": True,
        "hold_ttl_seconds": 1,
    }
    assert (await stack.http.post("/v1/checkout/check", json=cart)).json()["hold"]
    assert (await stack.http.get(f"/v1/inventory/{net.sku('tee')}")).json()[0]["held"] == 2

    while (await stack.http.get(f"/v1/inventory/{net.sku('tee')}")).json()[0]["held"]:
        await run_housekeeping(stack)

    assert (await stack.http.get(f"/v1/inventory/{net.sku('tee')}")).json()[0]["available"] == 2
    assert_ledger_balances(stack.engine)


async def test_deltas_pulled_from_an_erp_are_applied_once(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 5})
    source = f"erp-{net.prefix}"
    now = datetime.now(UTC).isoformat()
    deltas = [
        {"event_id": f"{source}-{i}", "node_id": net.node("dc"), "sku": net.sku("tee"),
         "delta": 1, "as_of": now}
        for i in range(150)
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        await sim.put(f"/sim/erp/{source}/stock-deltas", json=deltas)
    with transaction(stack.engine) as session:
        session.add(
            FeedSource(source=source, url=f"{stack.simulator_url}/erp/{source}/stock-deltas")
        )

    await run_housekeeping(stack)
    await run_housekeeping(stack)  # nothing new: the cursor moved past every delta

    assert await _on_hand(stack, net.sku("tee")) == 155
    assert_ledger_balances(stack.engine)


async def test_channels_hear_when_a_sku_sells_out_and_comes_back(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 1})
    await run_housekeeping(stack)
    start = (await stack.http.get("/v1/availability/events", params={"after": 0})).json()
    cursor = start[-1]["id"] if start else 0
    sku, node = net.sku("tee"), net.node("dc")

    remove = {"node_id": node, "sku": sku, "delta": -1, "reason": "damaged"}
    await stack.http.post("/v1/inventory/adjustments", json=remove)
    await run_housekeeping(stack)
    await stack.http.post("/v1/inventory/adjustments", json={**remove, "delta": 3, "reason": "PO"})
    await run_housekeeping(stack)

    events = (
        await stack.http.get("/v1/availability/events", params={"after": cursor, "channel": "web"})
    ).json()
    mine = [(e["event"], e["units"]) for e in events if e["sku"] == sku]
    assert mine == [("out_of_stock", 0), ("back_in_stock", 3)]


async def test_the_housekeeping_schedule_is_created_once_and_runs(stack) -> None:
    await ensure_housekeeping_schedule(stack.client, stack.settings.task_queue, 3600)
    await ensure_housekeeping_schedule(stack.client, stack.settings.task_queue, 3600)
    handle = stack.client.get_schedule_handle(HOUSEKEEPING_SCHEDULE_ID)

    await handle.trigger()
    for _ in range(100):
        description = await handle.describe()
        if description.info.recent_actions:
            break
        await asyncio.sleep(0.1)

    assert description.info.recent_actions
    await handle.delete()
