"""Housekeeping on the real stack when a pulled stock feed is bad (audit H6): a delta for an
unknown SKU or node, or an ERP that refuses us, costs that line or that source this run and
nothing else; availability events and node degradation still happen."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine
from sqlmodel import update

from ledger.db import transaction
from ledger.node_health import record_incident
from ledger.tables import FeedSource
from tests.support.housekeeping_runs import run_housekeeping
from tests.support.network import build_network

NODES = {"dc": {"type": "warehouse", "km_east": 10}, "sick": {"type": "store", "km_east": 20}}


@contextmanager
def _pulled(engine: Engine, sources: dict[str, str]) -> Iterator[None]:
    """Feed sources for one test; disabled after it, so the session's stack does not keep
    pulling them in the tests that follow."""
    with transaction(engine) as session:
        for source, url in sources.items():
            session.add(FeedSource(source=source, url=url))
    try:
        yield
    finally:
        with transaction(engine) as session:
            session.exec(
                update(FeedSource)
                .where(FeedSource.source.in_(list(sources)))  # type: ignore[attr-defined]
                .values(enabled=False)
            )


def _cursor(engine: Engine, source: str) -> str | None:
    with transaction(engine) as session:
        row = session.get(FeedSource, source)
        assert row is not None
        return row.cursor


async def _on_hand(stack, sku: str) -> int:
    return (await stack.http.get(f"/v1/inventory/{sku}")).json()[0]["on_hand"]


def _make_unhealthy(engine: Engine, node_id: str) -> None:
    """Three rejections and no other shipment: the node-health rule degrades it."""
    with transaction(engine) as session:
        for n in range(3):
            order = f"ORD-{node_id}-{n}"
            record_incident(session, order, node_id, f"{order}-S1", "rejected", "no stock")


async def test_a_delta_for_an_unknown_sku_or_node_does_not_stop_housekeeping(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 5, ("dc", "cap"): 1}
    )
    dc, tee, cap = net.node("dc"), net.sku("tee"), net.sku("cap")
    source = f"erp-{net.prefix}"
    now = datetime.now(UTC).isoformat()
    deltas = [
        {"event_id": f"{source}-1", "node_id": dc, "sku": tee, "delta": 2, "as_of": now},
        {"event_id": f"{source}-2", "node_id": dc, "sku": f"NEW-SKU-{net.prefix}", "delta": 7,
         "as_of": now},
        {"event_id": f"{source}-3", "node_id": f"nowhere-{net.prefix}", "sku": tee, "delta": 9,
         "as_of": now},
        {"event_id": f"{source}-4", "node_id": dc, "sku": tee, "delta": 3, "as_of": now},
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        await sim.put(f"/sim/erp/{source}/stock-deltas", json=deltas)
    before = (await stack.http.get("/v1/availability/events", params={"after": 0})).json()
    after = before[-1]["id"] if before else 0
    sell_out = {"node_id": dc, "sku": cap, "delta": -1, "reason": "damaged"}
    assert (await stack.http.post("/v1/inventory/adjustments", json=sell_out)).status_code < 300
    _make_unhealthy(stack.engine, net.node("sick"))

    with _pulled(stack.engine, {source: f"{stack.simulator_url}/erp/{source}/stock-deltas"}):
        first = await run_housekeeping(stack)
        second = await run_housekeeping(stack)  # the cursor moved past the page: nothing again
        cursor = _cursor(stack.engine, source)

    # The stack's own Schedule may run housekeeping between these two, so counts per run are
    # not asserted: what the ledger and the cursor show is.
    assert first.deltas_pulled <= 2 and second.deltas_pulled == 0
    assert await _on_hand(stack, tee) == 10  # the good lines, each once
    assert cursor == "4"
    events = (
        await stack.http.get("/v1/availability/events", params={"after": after, "channel": "web"})
    ).json()
    assert [(e["event"], e["units"]) for e in events if e["sku"] == cap] == [("out_of_stock", 0)]
    assert await _status(stack, net.node("sick")) == "degraded"


async def test_an_erp_that_refuses_us_is_skipped_and_the_other_sources_are_pulled(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 5})
    refusing, good = f"erp-refusing-{net.prefix}", f"erp-good-{net.prefix}"
    garbled = f"erp-garbled-{net.prefix}"
    now = datetime.now(UTC).isoformat()
    delta = {"event_id": f"{good}-1", "node_id": net.node("dc"), "sku": net.sku("tee"),
             "delta": 4, "as_of": now}  # fmt: skip
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        await sim.put(f"/sim/erp/{good}/stock-deltas", json=[delta])
    _make_unhealthy(stack.engine, net.node("sick"))
    sources = {
        # a path the ERP does not serve: a 404, as permanent as an expired credential's 401
        refusing: f"{stack.simulator_url}/erp/{refusing}/no-such-feed",
        garbled: f"{stack.simulator_url}/pim/catalogue",  # answers, but not with a page of deltas
        good: f"{stack.simulator_url}/erp/{good}/stock-deltas",
    }

    with _pulled(stack.engine, sources):
        result = await run_housekeeping(stack)
        cursors = {s: _cursor(stack.engine, s) for s in sources}

    assert result.deltas_pulled <= 1  # the Schedule's own run may have pulled it first
    assert await _on_hand(stack, net.sku("tee")) == 9
    assert cursors == {refusing: None, garbled: None, good: "1"}  # the others: asked again

    assert await _status(stack, net.node("sick")) == "degraded"


async def test_an_erp_still_unreachable_after_the_retries_is_skipped(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 5})
    _make_unhealthy(stack.engine, net.node("sick"))
    source = f"erp-down-{net.prefix}"

    with _pulled(stack.engine, {source: "http://127.0.0.1:9/erp/stock-deltas"}):  # discard port
        result = await run_housekeeping(stack)  # five attempts, about 15 s of back-off
        cursor = _cursor(stack.engine, source)

    assert cursor is None
    assert await _status(stack, net.node("sick")) == "degraded"
    assert result is not None  # the run completed


async def _status(stack, node_id: str) -> str:
    nodes = {n["node_id"]: n for n in (await stack.http.get("/v1/nodes")).json()}
    return nodes[node_id]["status"]
