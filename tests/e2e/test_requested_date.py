"""A requested delivery window through the whole stack: the order is reserved at once, promised
on its not-before date, and released to its node on its release day (a durable timer), not at
once; a support cancel during that wait releases its stock and the node never sees it.

A worker of its own, where a day lasts RELEASE_DAY seconds (Settings.release_day_seconds), so
a date days ahead is seconds ahead for the timer."""

import re
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, select

from contracts.starters import start_order
from domain.orders import Order
from ledger.tables import Reservation
from tests.support.network import build_network
from tests.support.orders_api import order_payload
from worker import order_worker

ONE_WAREHOUSE = {"near": {"type": "warehouse", "km_east": 5}}
RELEASE_DAY = 2.0  # seconds


def _events(order: dict, event: str) -> list[dict]:
    return [e for e in order["timeline"] if e["event"] == event]


def _order(net, not_before: date, requested_by: date | None = None) -> Order:
    payload = order_payload(net, [("tee", 2)], order_type="b2b")
    return Order(
        order_id=f"order-{payload['channel']}-{payload['external_id']}",
        submitted_at=datetime.now(UTC),
        requested_not_before=not_before,
        requested_by=requested_by,
        **payload,
    )


def _settings(stack):
    return stack.settings.model_copy(
        update={
            "task_queue": f"requested-{uuid.uuid4().hex[:8]}",
            "release_day_seconds": RELEASE_DAY,
        }
    )


def _reserved(stack, order_id: str) -> int:
    with Session(stack.engine) as session:
        rows = session.exec(select(Reservation).where(Reservation.order_id == order_id)).all()
        return sum(r.quantity for r in rows if r.status == "active")


async def test_a_requested_date_reserves_at_once_and_releases_on_its_release_day(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 5})
    not_before = datetime.now(UTC).date() + timedelta(days=5)
    order = _order(net, not_before, requested_by=not_before + timedelta(days=2))
    settings = _settings(stack)
    async with order_worker(stack.client, settings):
        started = datetime.now(UTC)
        assert await start_order(stack.client, order, settings.task_queue)
        held = await stack.wait_for_status(order.order_id, "ALLOCATED")
        [shipment] = held["shipments"]
        assert shipment["status"] == "ALLOCATED"  # reserved, not at the node yet
        assert _reserved(stack, order.order_id) == 2
        assert len(_events(held, "release scheduled")) == 1
        # Promised for the buyer's "no later than"; planned for the first day allowed.
        assert held["promise"]["promised_date"] == (not_before + timedelta(days=2)).isoformat()
        assert held["promise"]["planned_date"] == not_before.isoformat()
        assert not held["promise"]["at_risk"]
        assert held["deadline"] is not None  # the release day, as the wait's clock

        done = await stack.wait_for_status(order.order_id, "COMPLETED")

    [released] = _events(done, "released")
    [allocated] = _events(done, "allocated")
    # The plan as made (its date in the explanation), moved later by the days it was early:
    # released that many RELEASE_DAY-second days after allocation, not at once.
    planned = date.fromisoformat(re.findall(r"by (\d{4}-\d{2}-\d{2})", allocated["detail"])[0])
    early = (not_before - planned).days
    waited = (datetime.fromisoformat(released["at"]) - started).total_seconds()
    expected = early * RELEASE_DAY
    assert early >= 1
    assert expected - 1 <= waited <= expected + 10
    assert date.fromisoformat(done["shipments"][0]["ship_by"]) >= planned
    assert done["shipments"][0]["promised_date"] == not_before.isoformat()


async def test_a_support_cancel_while_an_order_waits_for_its_release_day_releases_its_stock(
    stack,
) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 5})
    order = _order(net, datetime.now(UTC).date() + timedelta(days=60))  # minutes of waiting
    settings = _settings(stack)
    async with order_worker(stack.client, settings):
        assert await start_order(stack.client, order, settings.task_queue)
        await stack.wait_for_status(order.order_id, "ALLOCATED")
        assert _reserved(stack, order.order_id) == 2

        cancelled = await stack.http.post(
            f"/v1/orders/{order.order_id}/cancel", json={"reason": "buyer changed plans"}
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "CANCELLED"

    done = (await stack.http.get(f"/v1/orders/{order.order_id}")).json()
    assert done["status"] == "CANCELLED"
    assert _events(done, "released") == []  # its node never saw it
    assert _reserved(stack, order.order_id) == 0
