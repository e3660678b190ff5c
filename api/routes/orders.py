"""Order intake, reading, and support actions."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import EngineDep, SessionDep, SettingsDep, TemporalDep, off_loop
from api.errors import ApiError
from api.schemas import OrderAccepted, OrderSubmission, SupportAction
from api.security import (
    ChannelOrAdmin,
    OrderReader,
    Support,
    actor_of,
    channel_of,
    may_read_order,
)
from api.support_schemas import (
    CancelAction,
    ForceableReallocateAction,
    MarkShippedAction,
    OrderIdPath,
    ShipmentIdPath,
)
from api.workflow_calls import run_update
from contracts.ids import order_workflow_id
from contracts.names import OrderUpdate
from contracts.order import (
    AcknowledgeInput,
    AcknowledgeResult,
    CancelInput,
    CancelResult,
    MarkShippedInput,
    MarkShippedResult,
    ReallocateInput,
    ReallocateResult,
    RetryInput,
    RetryResult,
)
from contracts.starters import query_order_state, start_order
from domain.orders import DeliveryMethod, DeliveryOptionCode, Order, OrderState, OrderStatus
from ledger import orders_view
from services.orders import (
    acknowledge_closed_order,
    admit_order,
    channel_fulfilment,
    promise_of_hold,
)
from services.preorders import refuse_preorder

router = APIRouter(prefix="/v1/orders", tags=["orders"])
# Order fields a submission may leave to its channel's configuration.
# The consolidation window is the channel's only (no submission field).
_CHANNEL_FULFILMENT = (
    "fulfilment_policy",
    "ship_complete_wait_seconds",
    "ship_complete_then",
    "consolidation_window_seconds",
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderAccepted)
async def submit_order(
    submission: OrderSubmission,
    response: Response,
    caller: ChannelOrAdmin,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> OrderAccepted:
    """Accept an order and start its workflow. The same channel and external id sent again
    returns the existing order (200) instead of creating a second one."""
    channel_of(caller, submission.channel)
    order_id = order_workflow_id(submission.channel, submission.external_id)
    existing = await off_loop(
        session,
        admit_order,
        order_id,
        submission.lines,
        submission.delivery_method,
        submission.pickup_node_id,
        submission.hold_id,
        channel=submission.channel,
    )
    if existing is not None:
        # Accepted before: its run may be gone from Temporal (retention), the read model is not.
        response.status_code = status.HTTP_200_OK
        return _accepted(order_id, existing.status, duplicate=True)
    if submission.delivery_option == DeliveryOptionCode.PREORDER:
        await off_loop(session, refuse_preorder, submission.channel, submission.promised_date)
    sold = submission.model_dump()
    if submission.hold_id and submission.delivery_option is None:
        option, promised = await off_loop(session, promise_of_hold, submission.hold_id)
        if option is not None and (option == DeliveryOptionCode.PICKUP) == (
            submission.delivery_method == DeliveryMethod.PICKUP
        ):
            sold.update(delivery_option=option, promised_date=submission.promised_date or promised)
    # What the submission leaves out comes from the channel (read like a reference), or the
    # order's defaults for a channel with no configuration.
    left_out = [name for name in _CHANNEL_FULFILMENT if sold.get(name) is None]
    if left_out:
        channel = await off_loop(session, channel_fulfilment, submission.channel)
        for name in left_out:
            sold.pop(name, None)
            if channel.get(name) is not None:
                sold[name] = channel[name]
    order = Order(order_id=order_id, submitted_at=datetime.now(UTC), **sold)
    try:
        duplicate = not await start_order(temporal, order, settings.task_queue)
    except RPCError as exc:
        raise ApiError(503, "orchestrator_unavailable", f"Temporal: {exc.message}") from exc
    if duplicate:
        response.status_code = status.HTTP_200_OK
    current = await off_loop(session, orders_view.get_order, order_id)
    return _accepted(order_id, current.status if current else OrderStatus.RECEIVED, duplicate)


def _accepted(order_id: str, status_: OrderStatus, duplicate: bool) -> OrderAccepted:
    return OrderAccepted(
        order_id=order_id,
        status=status_,
        duplicate=duplicate,
        links={"self": f"/v1/orders/{order_id}"},
    )


@router.get("/{order_id}", response_model=OrderState)
async def get_order(
    order_id: str, session: SessionDep, temporal: TemporalDep, caller: OrderReader
) -> OrderState:
    """The order's status, lines, shipments (node, carrier, tracking) and timeline."""
    state = await off_loop(session, orders_view.get_order, order_id)
    if state is not None and may_read_order(caller, state.order.channel):
        return state
    if state is not None:  # another channel's order: as if it did not exist
        raise ApiError(404, "order_not_found", f"no order {order_id}")
    # Started a moment ago and not projected yet: ask the workflow itself.
    handle = temporal.get_workflow_handle(order_id)
    try:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            # A query needs a worker; while none polls, answer 503 soon rather than hang.
            live = await query_order_state(temporal, order_id, rpc_timeout=timedelta(seconds=5))
            if may_read_order(caller, live.order.channel):
                return live
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise ApiError(503, "order_not_visible_yet", f"retry shortly: {exc.message}") from exc
    except WorkflowQueryFailedError as exc:
        raise ApiError(503, "order_not_visible_yet", f"retry shortly: {exc}") from exc
    raise ApiError(404, "order_not_found", f"no order {order_id}")


@router.get("", response_model=list[OrderState])
async def list_orders(
    session: SessionDep,
    caller: OrderReader,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    channel: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[OrderState]:
    wanted = channel_of(caller, channel)
    # Read, validated and the connection returned in one pool thread: a plain def route would
    # leave the session's close to a second thread, which a full thread pool may never give.
    return await off_loop(session, orders_view.list_orders, status_, wanted, limit, offset)


@router.post("/{order_id}/cancel", response_model=CancelResult)
async def cancel_order(
    order_id: str,
    action: CancelAction,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Support,
) -> CancelResult:
    """Cancel before shipping: releases the stock and cancels at the node(s). 409 once shipped,
    or (without `force`) while a shipment is labelled."""
    return await run_update(
        temporal,
        session,
        order_id,
        OrderUpdate.CANCEL,
        CancelInput(reason=action.reason, force=action.force),
        CancelResult,
        settings.support_update_timeout_seconds,
    )


@router.post("/{order_id}/retry", response_model=RetryResult)
async def retry_order(
    order_id: str,
    action: SupportAction,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Support,
) -> RetryResult:
    """Source a backordered order again (for example after stock arrived)."""
    return await run_update(
        temporal,
        session,
        order_id,
        OrderUpdate.RETRY,
        RetryInput(reason=action.reason),
        RetryResult,
        settings.support_update_timeout_seconds,
    )


@router.post("/{order_id}/reallocate", response_model=ReallocateResult)
async def reallocate_order(
    order_id: str,
    action: ForceableReallocateAction,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Support,
) -> ReallocateResult:
    """Move shipments that have not been picked (with `force`: not shipped) to other nodes,
    excluding their current node."""
    request = ReallocateInput(reason=action.reason, node_id=action.node_id, force=action.force)
    return await run_update(
        temporal,
        session,
        order_id,
        OrderUpdate.REALLOCATE,
        request,
        ReallocateResult,
        settings.support_update_timeout_seconds,
    )


@router.post("/{order_id}/shipments/{shipment_id}/mark-shipped", response_model=MarkShippedResult)
async def mark_shipment_shipped(
    order_id: OrderIdPath,
    shipment_id: ShipmentIdPath,
    action: MarkShippedAction,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Support,
) -> MarkShippedResult:
    """Record that a shipment left its node when the node's system never said so: its stock
    leaves the node and the order goes on as if the node had sent `shipped`."""
    request = MarkShippedInput(
        shipment_id=shipment_id, reason=action.reason, tracking_number=action.tracking_number
    )
    return await run_update(
        temporal,
        session,
        order_id,
        OrderUpdate.MARK_SHIPPED,
        request,
        MarkShippedResult,
        settings.support_update_timeout_seconds,
    )


@router.post("/{order_id}/acknowledge", response_model=AcknowledgeResult)
async def acknowledge_attention(
    order_id: OrderIdPath,
    action: SupportAction,
    session: SessionDep,
    engine: EngineDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    caller: Support,
) -> AcknowledgeResult:
    """Support has dealt with what the order's `attention` said: clear it (and NeedsAttention).
    A closed order's flag (a late shipment after it completed) is cleared in the read model."""
    try:
        return await run_update(
            temporal,
            session,
            order_id,
            OrderUpdate.ACKNOWLEDGE,
            AcknowledgeInput(reason=action.reason),
            AcknowledgeResult,
            settings.support_update_timeout_seconds,
        )
    except ApiError as exc:
        if exc.error != "order_closed":
            raise
    state = await run_in_threadpool(
        acknowledge_closed_order, engine, order_id, action.reason, actor_of(caller)
    )
    return AcknowledgeResult(order_id=order_id, status=state.status)
