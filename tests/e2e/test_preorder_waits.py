"""A pre-order waits BACKORDERED for its incoming stock by plan: its waits count from its
promised date (Patch.ORDER_PREORDER_WAIT_2026_12), so support is not asked, and a ship-complete
channel's deadline neither asks nor splits, before that date. An order that is not a pre-order,
and a pre-order whose date has come, are escalated as before.

Short-scaled: the escalation's three days are one second here (the workflow module's
BACKORDER_ESCALATES_AFTER, on a worker of the test's own, on its own task queue), the
ship-complete wait one second; a support retry makes each order look at its waits again."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import workflows.order as order_workflow
from connectors.http import JsonHttpClient
from contracts.names import OrderQuery, OrderUpdate
from contracts.order import RetryInput, RetryResult
from contracts.starters import start_order
from domain.orders import Order, OrderState
from tests.support.network import build_network
from tests.support.orders_api import order_payload
from worker import activity_methods, activity_objects

ESCALATES_AFTER = timedelta(seconds=1)  # BACKORDER_ESCALATES_AFTER, scaled
TODAY = datetime.now(UTC).date()


def _order(net, name: str, **fields: object) -> Order:
    payload = order_payload(net, [("tee", 1)], external_id=f"{net.prefix}-{name}")
    return Order.model_validate(
        {**payload, "order_id": f"order-web-{payload['external_id']}",
         "submitted_at": datetime.now(UTC), **fields}
    )  # fmt: skip


def _preorder(promised: date, **fields: object) -> dict:
    return {"delivery_option": "preorder", "promised_date": promised, **fields}


SHIP_COMPLETE = {"fulfilment_policy": "ship_complete", "ship_complete_wait_seconds": 1.0}


async def _state(stack, order_id: str) -> OrderState:
    handle = stack.client.get_workflow_handle(order_id)
    return await handle.query(OrderQuery.STATE, result_type=OrderState)


async def _backordered(stack, order_id: str) -> None:
    for _ in range(300):
        if (await _state(stack, order_id)).status == "BACKORDERED":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{order_id} never backordered")


def _asked(state: OrderState) -> list[str]:
    """What a person was asked, and any ship-complete deadline the order followed."""
    return [e.detail for e in state.timeline if e.event in ("attention", "ship-complete deadline")]


async def test_a_preorder_is_not_escalated_before_its_promised_date(
    stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(order_workflow, "BACKORDER_ESCALATES_AFTER", ESCALATES_AFTER)
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"near": {"type": "warehouse", "km_east": 5}},
        {("near", "tee"): 0},  # nothing now: every order waits BACKORDERED
    )
    later = TODAY + timedelta(days=12)  # its purchase order is due in 9 days
    waiting = {
        "preorder": _order(net, "pre", **_preorder(later)),
        "preorder ship-complete": _order(net, "pre-sc", **_preorder(later, **SHIP_COMPLETE)),
    }
    escalated = {
        "backorder": _order(net, "plain"),
        "preorder due today": _order(net, "due", **_preorder(TODAY)),
        "ship-complete": _order(net, "sc", **SHIP_COMPLETE),
        "preorder ship-complete due today": _order(
            net, "due-sc", **_preorder(TODAY, **SHIP_COMPLETE)
        ),
    }
    orders = {**waiting, **escalated}

    http = JsonHttpClient("preorder-waits")
    activities = activity_methods(
        *activity_objects(stack.engine, stack.client, stack.settings, http)
    )
    task_queue = f"preorder-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(
            stack.client,
            task_queue=task_queue,
            workflows=[order_workflow.OrderWorkflow],
            activities=activities,
            activity_executor=executor,
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            for order in orders.values():
                assert await start_order(stack.client, order, task_queue)
            for order in orders.values():
                await _backordered(stack, order.order_id)
            # Past the escalation and the ship-complete wait; a support retry looks again.
            await asyncio.sleep(1.5)
            for order in orders.values():
                handle = stack.client.get_workflow_handle(order.order_id)
                if (await _state(stack, order.order_id)).status != "BACKORDERED":
                    continue
                await handle.execute_update(
                    OrderUpdate.RETRY, RetryInput(reason="look again"), result_type=RetryResult
                )
            states = {name: await _state(stack, o.order_id) for name, o in orders.items()}
            for order in orders.values():
                await stack.client.get_workflow_handle(order.order_id).cancel()
    await http.aclose()

    for name in waiting:
        assert _asked(states[name]) == [], (name, states[name].timeline)
        assert states[name].status == "BACKORDERED", name
    asked = {name: _asked(states[name]) for name in escalated}
    assert all(asked.values()), asked
    assert "pre-order promised for" in " ".join(asked["preorder due today"]), asked
    assert any("ship-complete" in d for d in asked["preorder ship-complete due today"]), asked
