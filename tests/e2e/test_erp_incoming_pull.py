"""Incoming stock pulled from an ERP on the real stack: the simulated ERP serves a purchase order
with its deltas, housekeeping pulls it, and availability answers it by date; a bad line on the
page is refused without holding back the lines after it."""

from datetime import UTC, datetime

import httpx

from ledger.db import transaction
from ledger.tables import FeedSource
from tests.support.housekeeping_runs import run_housekeeping
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import build_network

NODES = {"dc": {"type": "warehouse", "km_east": 10}}


async def _availability(stack, sku: str) -> dict:  # type: ignore[no-untyped-def]
    (answer,) = (await stack.http.get("/v1/availability", params={"sku": sku})).json()
    return answer


async def test_a_purchase_order_pulled_from_the_erp_is_available_on_its_date(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 0})
    source, po = f"erp-{net.prefix}", f"PO-{net.prefix}"
    line = {"kind": "purchase_order", "reference": po, "line": 1, "node_id": net.node("dc"),
            "sku": net.sku("tee"), "quantity": 6, "expected_date": "2026-12-14"}  # fmt: skip
    delta = {"event_id": f"{source}-d1", "node_id": net.node("dc"), "sku": net.sku("tee"),
             "delta": 2, "as_of": datetime.now(UTC).isoformat()}  # fmt: skip
    bad = {**line, "event_id": f"{po}-bad", "line": 2, "expected_date": "mid-December"}
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        await sim.put(f"/sim/erp/{source}/stock-deltas", json=[delta])
        await sim.put(f"/sim/erp/{source}/incoming", json=[bad, {**line, "event_id": f"{po}-1"}])
    with transaction(stack.engine) as session:
        session.add(
            FeedSource(source=source, url=f"{stack.simulator_url}/erp/{source}/stock-deltas")
        )

    await run_housekeeping(stack)
    await run_housekeeping(stack)  # nothing new: the cursor moved past the page, bad line too
    pulled = await _availability(stack, net.sku("tee"))
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        # the ERP moves the order: more units, later
        moved = {**line, "event_id": f"{po}-2", "quantity": 8, "expected_date": "2026-12-20"}
        await sim.put(f"/sim/erp/{source}/incoming", json=[moved])
    await run_housekeeping(stack)
    changed = await _availability(stack, net.sku("tee"))

    assert (pulled["total"], pulled["incoming"]) == (2, [{"date": "2026-12-14", "units": 6}])
    assert (changed["total"], changed["incoming"]) == (2, [{"date": "2026-12-20", "units": 8}])
    assert_ledger_balances(stack.engine)
