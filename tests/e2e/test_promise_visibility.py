"""The promise is data ops can filter by (issue 13 item 2): through the real stack, an allocated
order carries its promised and ship-by dates in the API (the order's promise and each
shipment's), and as the PromisedBy and ShipBy search attributes, so the Temporal UI lists it by
date, and `PromisedBy < today AND OrderStatus != "COMPLETED"` lists an order whose promise has
passed ("late against promise") and not one still in time; the promise-kept measure counts
both as due. The node is scripted: it takes the orders and says nothing more, so both stay
open while the test looks."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest_asyncio

from tests.support.network import build_network
from tests.support.orders_api import order_payload
from tests.support.scripted_node import ScriptedNodeSystem

PLACED = ("ALLOCATED", "RELEASED", "IN_FULFILLMENT")


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[ScriptedNodeSystem]:
    system = ScriptedNodeSystem().start()
    yield system
    system.stop()


def _midnight(day: str | date) -> str:
    return f"{day}T00:00:00Z"


def _next(day: str) -> date:
    return date.fromisoformat(day) + timedelta(days=1)


def _day(day: str) -> str:
    """Promised on that day, as ops filter it: a half-open range. On the dev server's SQLite
    visibility store `PromisedBy = "<day>T00:00:00Z"` (and `<=` that instant) matches nothing
    even where the attribute holds exactly that instant; the range matches on every store."""
    return f'PromisedBy >= "{_midnight(day)}" AND PromisedBy < "{_midnight(_next(day))}"'


async def _listed(stack, query: str, expected: set[str]) -> set[str]:
    """The workflows the query lists, polled until they are `expected` (visibility is eventually
    consistent) or ten seconds have passed."""
    found: set[str] = set()
    for _ in range(100):
        found = {wf.id async for wf in stack.client.list_workflows(query)}
        if found == expected:
            break
        await asyncio.sleep(0.1)
    return found


async def _allocated(stack, order_id: str) -> dict:
    loop = asyncio.get_running_loop()
    until = loop.time() + 60
    order: dict = {}
    while loop.time() < until:
        response = await stack.http.get(f"/v1/orders/{order_id}")
        order = response.json() if response.status_code == 200 else {}
        if order.get("status") in PLACED and order.get("promise"):
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(f"{order_id} never allocated with a promise; last seen {order}")


async def _submit(stack, payload: dict) -> str:
    response = await stack.http.post("/v1/orders", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


async def test_orders_are_listed_by_promised_and_ship_by_date_and_late_against_promise(
    stack, scripted
) -> None:
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"near": {"type": "warehouse", "km_east": 5}},
        {("near", "tee"): 10},
    )
    scripted.serve(stack.engine, net.node("near"))
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)

    in_time = await _submit(stack, order_payload(net, [("tee", 1)]))
    # Promised yesterday at checkout: no plan can keep that, the order records it at risk.
    passed = await _submit(
        stack,
        order_payload(
            net, [("tee", 1)], delivery_option="home_economy", promised_date=str(yesterday)
        ),
    )
    order = await _allocated(stack, in_time)
    late = await _allocated(stack, passed)

    promise = order["promise"]
    [shipment] = order["shipments"]
    assert (shipment["ship_by"], shipment["promised_date"]) == (
        promise["ship_by"],
        promise["promised_date"],
    )
    assert promise["ship_by"] >= str(today) and promise["promised_date"] >= promise["ship_by"]
    assert promise["at_risk"] is False
    assert late["promise"]["promised_date"] == str(yesterday) and late["promise"]["at_risk"]
    assert late["shipments"][0]["promised_date"] > str(yesterday)  # what the plan can do

    both = f'WorkflowId IN ("{in_time}", "{passed}")'
    promised_day = _day(promise["promised_date"])
    assert await _listed(stack, f"{promised_day} AND {both}", {in_time}) == {in_time}
    due_by = f'ShipBy < "{_midnight(_next(promise["ship_by"]))}" AND {both}'
    due_too = {passed} if late["promise"]["ship_by"] <= promise["ship_by"] else set()
    assert await _listed(stack, due_by, {in_time} | due_too) == {in_time} | due_too
    late_against_promise = (
        f'PromisedBy < "{_midnight(today)}" AND OrderStatus != "COMPLETED" AND {both}'
    )
    assert await _listed(stack, late_against_promise, {passed}) == {passed}

    # The promise-kept measure reads the same documents: both due, neither shipped nor overdue.
    kept = await stack.http.get("/v1/promise-kept", params={"node_id": net.node("near")})
    assert kept.status_code == 200, kept.text
    figures = kept.json()["overall"]
    assert (figures["shipments"], figures["shipped"], figures["overdue"]) == (2, 0, 0)
