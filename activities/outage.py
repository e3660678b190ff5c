"""Activities of the node-outage fan-out: find the orders, ask each one to move; and the
node-health rule that degrades a failing node by itself."""

import asyncio
from datetime import UTC, datetime

from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from contracts.activities import (
    DegradedNode,
    DegradeUnhealthyNodesInput,
    DegradeUnhealthyNodesResult,
    FindOrdersAtNodeInput,
    FindOrdersAtNodeResult,
    MoveOrderAwayInput,
    MoveOrderAwayResult,
)
from contracts.ids import automatic_outage_trigger, node_outage_workflow_id
from contracts.names import ActivityName, OrderUpdate
from contracts.order import ReallocateInput, ReallocateResult
from contracts.outage import NodeOutageInput
from contracts.starters import start_node_outage, update_order
from domain.node_health import NodeHealthRule
from services import network


class OutageActivities:
    def __init__(
        self, engine: Engine, client: Client, health_rule: NodeHealthRule | None = None
    ) -> None:
        self._engine = engine
        self._client = client
        self._health_rule = health_rule or NodeHealthRule()

    @activity.defn(name=ActivityName.DEGRADE_UNHEALTHY_NODES)
    async def degrade_unhealthy_nodes(
        self, _: DegradeUnhealthyNodesInput
    ) -> DegradeUnhealthyNodesResult:
        """Degrade every up node whose recent rejections and missed SLAs break the rule, and move
        its unpicked orders away, as ops would with `PUT /v1/nodes/{id}/status`
        (services.network.degrade_unhealthy_nodes)."""
        changes = await asyncio.to_thread(
            network.degrade_unhealthy_nodes, self._engine, self._health_rule, datetime.now(UTC)
        )
        started = []
        for change in changes:
            # Every automatically degraded node gets exactly one fan-out per degradation: the id
            # comes from the status change and is never reused, so a retry (or the next run after
            # a crash between the ledger and here) starts what is missing and nothing twice.
            workflow_id = node_outage_workflow_id(
                change.node_id, automatic_outage_trigger(change.change_id)
            )
            request = NodeOutageInput(
                node_id=change.node_id, reason=f"{change.node_id} {change.reason}"
            )
            if not await start_node_outage(
                self._client, request, workflow_id, activity.info().task_queue
            ):
                continue
            started.append(
                DegradedNode(
                    node_id=change.node_id,
                    reason=change.reason,
                    reallocation_workflow_id=workflow_id,
                )
            )
        return DegradeUnhealthyNodesResult(degraded=started)

    @activity.defn(name=ActivityName.FIND_ORDERS_AT_NODE)
    def find_orders_at_node(self, request: FindOrdersAtNodeInput) -> FindOrdersAtNodeResult:
        return FindOrdersAtNodeResult(
            order_ids=network.orders_at_node(self._engine, request.node_id)
        )

    @activity.defn(name=ActivityName.MOVE_ORDER_AWAY)
    async def move_order_away(self, request: MoveOrderAwayInput) -> MoveOrderAwayResult:
        """The order's own reallocate update does the work; its validator refuses what has been
        picked meanwhile, which is an answer here, not a failure."""
        try:
            await update_order(
                self._client,
                request.order_id,
                OrderUpdate.REALLOCATE,
                # The node is out of service: its orders must not wait for it to answer cancels.
                ReallocateInput(
                    reason=request.reason, node_id=request.node_id, cancel_in_background=True
                ),
                ReallocateResult,
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
