"""Proactive reallocation: when a node goes down, move every order waiting on it (not yet
picked) to other nodes, at a bounded rate, each with the reason in its timeline."""

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.activities import (
        FindOrdersAtNodeInput,
        FindOrdersAtNodeResult,
        MoveOrderAwayInput,
        MoveOrderAwayResult,
    )
    from contracts.names import ActivityName, WorkflowName
    from contracts.outage import NodeOutageInput, NodeOutageResult

OPTIONS = {
    "start_to_close_timeout": timedelta(minutes=5),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30)),
}


@workflow.defn(name=WorkflowName.NODE_OUTAGE)
class NodeOutageWorkflow:
    @workflow.run
    async def run(self, request: NodeOutageInput) -> NodeOutageResult:
        found: FindOrdersAtNodeResult = await workflow.execute_activity(
            ActivityName.FIND_ORDERS_AT_NODE,
            FindOrdersAtNodeInput(node_id=request.node_id),
            result_type=FindOrdersAtNodeResult,
            **OPTIONS,
        )
        moved: list[str] = []
        left: dict[str, str] = {}
        batch = request.orders_per_second
        for start in range(0, len(found.order_ids), batch):
            if start:
                await workflow.sleep(timedelta(seconds=1))  # protect the nodes we move to
            results = await asyncio.gather(
                *(
                    workflow.execute_activity(
                        ActivityName.MOVE_ORDER_AWAY,
                        MoveOrderAwayInput(
                            order_id=order_id, node_id=request.node_id, reason=request.reason
                        ),
                        result_type=MoveOrderAwayResult,
                        **OPTIONS,
                    )
                    for order_id in found.order_ids[start : start + batch]
                )
            )
            for result in results:
                if result.moved:
                    moved.append(result.order_id)
                else:
                    left[result.order_id] = result.why
        return NodeOutageResult(node_id=request.node_id, moved=moved, left_in_place=left)
