"""A grouped order cancelled while the ledger is away still leaves its parcel (the leave is
waited out like a stock step, not given up): a member left active could hold the parcel's label
claim the others wait for. The ledger is made to hang on the first leave for longer than the
order's local-activity limit (shortened here) for a few seconds, so the leave times out, and is
tried again.

The orders run on a worker of their own (the stack's activities, its LEAVE_PARCEL hung once),
on their own task queue, so the stack's worker keeps its own."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session
from temporalio import activity
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import workflows.order as order_workflow
from connectors.http import JsonHttpClient
from contracts.activities import LeaveParcelInput, LeaveParcelResult
from contracts.names import ActivityName
from contracts.starters import start_order
from domain.orders import Order
from ledger.tables import ParcelMember, ParcelMemberStatus
from tests.support.network import build_network
from tests.support.orders_api import order_payload
from worker import activity_methods, activity_objects

LIMIT = timedelta(seconds=3)  # the order's local-activity limit, for this test
HANGS = 4.5  # seconds the ledger hangs on each leave: longer than LIMIT
AWAY = 5.0  # seconds from the first leave during which the ledger is away


def _order(net, channel: str, units: int) -> Order:
    payload = order_payload(net, [("tee", units)], channel=channel)
    return Order.model_validate(
        {
            **payload,
            "order_id": f"order-{channel}-{payload['external_id']}",
            "submitted_at": datetime.now(UTC),
            "consolidation_window_seconds": 600.0,
        }
    )


async def test_a_cancelled_member_leaves_its_parcel_after_the_ledger_was_away(
    stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the overall limit: with a start-to-close as well, the SDK's core may time each attempt
    # out at that limit and retry it, and the order would never hear of the ledger being away.
    shortened = {**order_workflow.LEDGER, "schedule_to_close_timeout": LIMIT}
    del shortened["start_to_close_timeout"]
    monkeypatch.setattr(order_workflow, "LEDGER", shortened)
    monkeypatch.setattr(order_workflow, "LEDGER_RETRY", timedelta(seconds=1))
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"near": {"type": "warehouse", "km_east": 5}},
        {("near", "tee"): 10},
    )
    channel = f"web-{uuid.uuid4().hex[:8]}"
    kept, dropped = _order(net, channel, 1), _order(net, channel, 2)

    http = JsonHttpClient("leave-retried")
    activities = activity_methods(
        *activity_objects(stack.engine, stack.client, stack.settings, http)
    )
    [real_leave] = [
        a
        for a in activities
        if getattr(activity._Definition.from_callable(a), "name", None) == ActivityName.LEAVE_PARCEL
    ]
    calls: list[float] = []

    @activity.defn(name=ActivityName.LEAVE_PARCEL)
    def leave_parcel(request: LeaveParcelInput) -> LeaveParcelResult:
        calls.append(time.monotonic())
        if calls[-1] - calls[0] < AWAY:
            time.sleep(HANGS)  # the database hangs: the order's limit passes first
            raise RuntimeError("database away")
        return real_leave(request)

    activities = [a for a in activities if a is not real_leave] + [leave_parcel]
    task_queue = f"leave-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(
            stack.client,
            task_queue=task_queue,
            workflows=[order_workflow.OrderWorkflow],
            activities=activities,
            activity_executor=executor,
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            for order in (kept, dropped):
                assert await start_order(stack.client, order, task_queue)
            waiting = await stack.wait_for_status(dropped.order_id, "ALLOCATED", "RELEASED")
            assert waiting["status"] == "ALLOCATED", waiting["timeline"]  # held for the parcel
            cancelled = await stack.http.post(
                f"/v1/orders/{dropped.order_id}/cancel", json={"reason": "changed their mind"}
            )
            assert cancelled.status_code == 200, cancelled.text
            done = await stack.wait_for_status(kept.order_id, "COMPLETED")
            gone = await stack.wait_for_status(dropped.order_id, "CANCELLED")
    await http.aclose()

    assert len(calls) >= 2, calls  # timed out, tried again
    details = [e["detail"] for e in gone["timeline"]]
    assert any("waits for the ledger to leave parcel" in d for d in details), details
    assert any("left parcel" in d for d in details), details
    assert gone["attention"] is None, gone["attention"]  # resolved once it left
    [left] = gone["shipments"]
    with Session(stack.engine) as session:
        member = session.get(ParcelMember, left["shipment_id"])
        assert member is not None and member.status == ParcelMemberStatus.LEFT
    [shipment] = done["shipments"]
    assert shipment["status"] in ("SHIPPED", "DELIVERED") and shipment["tracking_number"]
