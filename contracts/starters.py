"""Typed ways in: start an order, a node-outage fan-out, the housekeeping Schedule, and call an
order's updates, signal and query. Callers never spell a Temporal name or id themselves."""

from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowUpdateStage,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from contracts import search_attributes as sa
from contracts.bid_prices import BidPriceRefreshInput, BidPriceRefreshResult
from contracts.housekeeping import HousekeepingInput, HousekeepingResult
from contracts.ids import (
    BID_PRICE_RUN_ID,
    BID_PRICE_SCHEDULE_ID,
    HOUSEKEEPING_RUN_ID,
    HOUSEKEEPING_SCHEDULE_ID,
)
from contracts.names import OrderQuery, OrderSignal, OrderUpdate, WorkflowName
from contracts.order import (
    NodeEvent,
    OrderWorkflowInput,
    RetryInput,
    RetryResult,
    TakeDeliveryResult,
)
from contracts.outage import NodeOutageInput
from domain.orders import Order, OrderState, OrderStatus

R = TypeVar("R", bound=BaseModel)


async def start_order(client: Client, order: Order, task_queue: str) -> bool:
    """Start the order's workflow; False if an order with this id was already started. The id
    is the idempotency key: a second submission never starts a second order, even after the
    first one has finished."""
    try:
        await client.start_workflow(
            WorkflowName.ORDER,
            OrderWorkflowInput(order=order),
            id=order.order_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.ORDER_STATUS, OrderStatus.RECEIVED.value),
                    SearchAttributePair(sa.CHANNEL, order.channel),
                    SearchAttributePair(sa.ORDER_TYPE, order.order_type.value),
                    SearchAttributePair(sa.PRIORITY, order.priority),
                ]
            ),
            static_summary=f"{order.order_type} order {order.external_id} from {order.channel}",
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def start_node_outage(
    client: Client, request: NodeOutageInput, workflow_id: str, task_queue: str
) -> bool:
    """Start the fan-out that moves a node's unpicked orders away; False if this id (one per
    status change) already ran."""
    try:
        await client.start_workflow(
            WorkflowName.NODE_OUTAGE,
            request,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def update_order(
    client: Client, order_id: str, update: OrderUpdate, request: BaseModel, result_type: type[R]
) -> R:
    """Run a support update on the order and wait for its result: `CancelResult`,
    `RetryResult` or `ReallocateResult` (contracts/order.py)."""
    handle = client.get_workflow_handle(order_id)
    return await handle.execute_update(update, request, result_type=result_type)


async def signal_node_event(client: Client, order_id: str, event: NodeEvent) -> None:
    await client.get_workflow_handle(order_id).signal(OrderSignal.NODE_EVENT, event)


async def deliver_to_order(client: Client, order_id: str, event: NodeEvent) -> None:
    """A delivery scan, taken by the order's workflow and published when this returns."""
    await client.get_workflow_handle(order_id).execute_update(
        OrderUpdate.TAKE_DELIVERY, event, result_type=TakeDeliveryResult
    )


async def query_order_state(client: Client, order_id: str, rpc_timeout: timedelta) -> OrderState:
    handle = client.get_workflow_handle(order_id)
    return await handle.query(OrderQuery.STATE, result_type=OrderState, rpc_timeout=rpc_timeout)


async def run_housekeeping_now(
    client: Client, workflow_id: str, task_queue: str
) -> HousekeepingResult:
    """One housekeeping run now, instead of waiting for its Schedule (ops and tests)."""
    return await client.execute_workflow(
        WorkflowName.HOUSEKEEPING,
        HousekeepingInput(),
        id=workflow_id,
        task_queue=task_queue,
        result_type=HousekeepingResult,
    )


async def ensure_housekeeping_schedule(
    client: Client, task_queue: str, every_seconds: float
) -> None:
    """Created when a worker starts, and brought to this worker's task queue and interval when
    an older start left different ones (runs on a queue nobody polls would stop housekeeping
    without a word). An unchanged Schedule is not written."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            WorkflowName.HOUSEKEEPING,
            HousekeepingInput(),
            id=HOUSEKEEPING_RUN_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_seconds))]),
        # A slow run (big feed page) must not pile up runs behind it.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(HOUSEKEEPING_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(HOUSEKEEPING_SCHEDULE_ID).update(
            lambda current: _replaced_if_different(current, schedule)
        )


def _replaced_if_different(current: ScheduleUpdateInput, wanted: Schedule) -> ScheduleUpdate | None:
    """The update, or None (no write) when the running Schedule already does what `wanted` does."""
    existing = current.description.schedule
    action = existing.action
    wanted_action = wanted.action
    assert isinstance(wanted_action, ScheduleActionStartWorkflow)
    same = (
        isinstance(action, ScheduleActionStartWorkflow)
        and action.workflow == wanted_action.workflow
        and action.task_queue == wanted_action.task_queue
        and [i.every for i in existing.spec.intervals] == [i.every for i in wanted.spec.intervals]
        and existing.policy.overlap == wanted.policy.overlap
    )
    return None if same else ScheduleUpdate(schedule=wanted)


async def run_bid_price_refresh_now(
    client: Client, workflow_id: str, task_queue: str
) -> BidPriceRefreshResult:
    """One bid-price refresh now, through the worker, instead of waiting for its Schedule."""
    return await client.execute_workflow(
        WorkflowName.BID_PRICE_REFRESH,
        BidPriceRefreshInput(),
        id=workflow_id,
        task_queue=task_queue,
        result_type=BidPriceRefreshResult,
    )


async def ensure_bid_price_schedule(client: Client, task_queue: str, every_seconds: float) -> None:
    """The bid-price refresh's Schedule, created when a worker starts and brought to its task
    queue and interval, like the housekeeping's. Overlaps are skipped: a slow LP must not
    queue a second solve of the same demand behind it."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            WorkflowName.BID_PRICE_REFRESH,
            BidPriceRefreshInput(),
            id=BID_PRICE_RUN_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(BID_PRICE_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(BID_PRICE_SCHEDULE_ID).update(
            lambda current: _replaced_if_different(current, schedule)
        )


async def start_automatic_retry(
    client: Client, order_id: str, request: RetryInput, update_id: str
) -> None:
    """Send a backordered order the RETRY update and return once the order has accepted it (its
    validator ran), without waiting for its allocation. A refusal raises
    WorkflowUpdateFailedError; a closed order, RPCError NOT_FOUND. The same `update_id` sent
    twice (a retried activity) is the same update: the order runs it once."""
    await client.get_workflow_handle(order_id).start_update(
        OrderUpdate.RETRY,
        request,
        id=update_id,
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=RetryResult,
    )
