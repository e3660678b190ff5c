"""Calls into order workflows, with Temporal's failures translated to API errors."""

import asyncio
import contextlib
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlmodel import Session
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import off_loop, release_connection
from api.errors import ApiError
from config import Settings
from contracts.names import OrderUpdate
from contracts.order import NodeEvent
from contracts.starters import (
    deliver_to_order,
    query_order_state,
    signal_node_event,
    update_order,
)
from domain.orders import OrderState
from ledger import orders_view

R = TypeVar("R", bound=BaseModel)
QUERY_TIMEOUT = timedelta(seconds=5)

# For callers that do not pass Settings.support_update_timeout_seconds: its default.
DEFAULT_UPDATE_TIMEOUT_SECONDS: float = Settings.model_fields[
    "support_update_timeout_seconds"
].default


class WorkflowClosed(Exception):
    """The order's workflow has ended (the read model knows the order): what it can no longer
    take, the read model records."""

    def __init__(self, state: OrderState) -> None:
        self.state = state
        super().__init__(f"order {state.order.order_id} is {state.status}")


class DeliveryNotTaken(Exception):
    """The order's workflow did not take a delivery scan: the read model records it."""


async def run_update(
    client: Client,
    session: Session,
    order_id: str,
    update: OrderUpdate,
    arg: BaseModel,
    result_type: type[R],
    timeout_seconds: float = DEFAULT_UPDATE_TIMEOUT_SECONDS,
) -> R:
    """The update's result; 409 if its validator refused it; 202 `in_progress` if the workflow
    has not finished it within `timeout_seconds` (a cancel waits for compensation at a node or
    a carrier that may be down for minutes): the workflow carries on, and GET /v1/orders/{id}
    shows when it is done."""
    release_connection(session)
    try:
        async with asyncio.timeout(timeout_seconds):
            return await update_order(client, order_id, update, arg, result_type)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        raise ApiError(409, f"{update}_refused", message) from exc
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        # The SDK turns our timeout's cancellation into its own error; both mean "not yet".
        raise ApiError(
            202,
            "in_progress",
            f"the {update} did not finish within {timeout_seconds:g}s and runs on in the order's"
            f" workflow: follow it with GET /v1/orders/{order_id} (its status and timeline);"
            f" send it again if the order shows no sign of it",
        ) from exc
    except RPCError as exc:
        found = await _closed_or_unknown(session, order_id, exc)
        if isinstance(found, OrderState):
            raise ApiError(409, "order_closed", f"order {order_id} is {found.status}") from exc
        raise found from exc


async def send_node_event(
    client: Client, session: Session, order_id: str, event: NodeEvent
) -> None:
    """Signal the order's workflow. WorkflowClosed if it has ended (a partner's late event: the
    caller records it in the read model rather than dropping it); ApiError 404 if no such order,
    503 if Temporal cannot be reached."""
    release_connection(session)
    try:
        await signal_node_event(client, order_id, event)
    except RPCError as exc:
        found = await _closed_or_unknown(session, order_id, exc)
        raise (WorkflowClosed(found) if isinstance(found, OrderState) else found) from exc


async def send_delivery(
    client: Client,
    session: Session,
    order_id: str,
    event: NodeEvent,
    timeout_seconds: float = DEFAULT_UPDATE_TIMEOUT_SECONDS,
) -> None:
    """A delivery scan to the order's workflow, returning once its read model shows it (an
    update, not a signal: a signal landing after the run's last publish would be lost with the
    run). WorkflowClosed if the run has ended; 503 (the partner sends it again) if it is slow."""
    release_connection(session)
    try:
        async with asyncio.timeout(timeout_seconds):
            await deliver_to_order(client, order_id, event)
    except WorkflowUpdateFailedError as exc:
        # Refused: by a worker of an older release with no such update (a rolling deploy), or
        # by a run that completed before taking it. A signal for the first; the read model
        # keeps it for the second (the caller records it there).
        with contextlib.suppress(ApiError, WorkflowClosed):
            await send_node_event(client, session, order_id, event)
        raise DeliveryNotTaken(order_id) from exc
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise ApiError(
            503, "order_busy", f"order {order_id} did not take the scan in time: send it again"
        ) from exc
    except RPCError as exc:
        found = await _closed_or_unknown(session, order_id, exc)
        raise (WorkflowClosed(found) if isinstance(found, OrderState) else found) from exc


async def shipment_node_in_workflow(client: Client, order_id: str, shipment_id: str) -> str | None:
    """The node the order's running workflow has the shipment at; None if the order has no such
    shipment, or no workflow. A query: nothing is added to the order's history. 503 if Temporal
    or the worker does not answer in time (the partner sends the event again)."""
    try:
        state = await query_order_state(client, order_id, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise ApiError(503, "orchestrator_unavailable", f"Temporal: {exc.message}") from exc
    except WorkflowQueryFailedError as exc:
        raise ApiError(503, "orchestrator_unavailable", f"order {order_id}: {exc}") from exc
    return next((s.node_id for s in state.shipments if s.shipment_id == shipment_id), None)


async def _closed_or_unknown(
    session: Session, order_id: str, exc: RPCError
) -> ApiError | OrderState:
    """The error to answer, or the order's state when its workflow has ended."""
    if exc.status != RPCStatusCode.NOT_FOUND:
        return ApiError(503, "orchestrator_unavailable", f"Temporal: {exc.message}")
    # Off the event loop: a pool checkout or a slow read here would stall every request.
    state = await off_loop(session, orders_view.get_order, order_id)
    if state is None:
        return ApiError(404, "order_not_found", f"no order {order_id}")
    return state
