"""Calls into order workflows, with Temporal's failures translated to API errors."""

from typing import TypeVar

from pydantic import BaseModel
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import release_connection
from api.errors import ApiError
from contracts.names import OrderUpdate
from contracts.order import NodeEvent
from contracts.starters import signal_node_event, update_order
from ledger import orders_view

R = TypeVar("R", bound=BaseModel)


async def run_update(
    client: Client,
    session: Session,
    order_id: str,
    update: OrderUpdate,
    arg: BaseModel,
    result_type: type[R],
) -> R:
    release_connection(session)
    try:
        return await update_order(client, order_id, update, arg, result_type)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        raise ApiError(409, f"{update}_refused", message) from exc
    except RPCError as exc:
        raise _closed_or_unknown(session, order_id, exc) from exc


async def send_node_event(
    client: Client, session: Session, order_id: str, event: NodeEvent
) -> None:
    release_connection(session)
    try:
        await signal_node_event(client, order_id, event)
    except RPCError as exc:
        raise _closed_or_unknown(session, order_id, exc) from exc


def _closed_or_unknown(session: Session, order_id: str, exc: RPCError) -> ApiError:
    if exc.status != RPCStatusCode.NOT_FOUND:
        return ApiError(503, "orchestrator_unavailable", f"Temporal: {exc.message}")
    state = orders_view.get_order(session, order_id)
    if state is None:
        return ApiError(404, "order_not_found", f"no order {order_id}")
    return ApiError(409, "order_closed", f"order {order_id} is {state.status}")
