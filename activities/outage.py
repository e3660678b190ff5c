"""Activities of the node-outage fan-out: find the orders, ask each one to move."""

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.models import (
    FindOrdersAtNodeInput,
    FindOrdersAtNodeResult,
    MoveOrderAwayInput,
    MoveOrderAwayResult,
)
from ledger.network import orders_movable_from
from workflows.models import ReallocateInput, ReallocateResult


class OutageActivities:
    def __init__(self, engine: Engine, client: Client) -> None:
        self._engine = engine
        self._client = client

    @activity.defn(name="find_orders_at_node")
    def find_orders_at_node(self, request: FindOrdersAtNodeInput) -> FindOrdersAtNodeResult:
        with Session(self._engine) as session:
            return FindOrdersAtNodeResult(order_ids=orders_movable_from(session, request.node_id))

    @activity.defn(name="move_order_away")
    async def move_order_away(self, request: MoveOrderAwayInput) -> MoveOrderAwayResult:
        """The order's own reallocate update does the work; its validator refuses what has been
        picked meanwhile, which is an answer here, not a failure."""
        handle = self._client.get_workflow_handle(request.order_id)
        try:
            await handle.execute_update(
                "reallocate",
                ReallocateInput(reason=request.reason, node_id=request.node_id),
                result_type=ReallocateResult,
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            why = cause.message if isinstance(cause, ApplicationError) else str(cause)
            return MoveOrderAwayResult(order_id=request.order_id, moved=False, why=why)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return MoveOrderAwayResult(order_id=request.order_id, moved=False, why="order closed")
        return MoveOrderAwayResult(order_id=request.order_id, moved=True)
