"""An order re-sent after Temporal has deleted its closed run (retention) is a duplicate: the
permanent read model answers for it, and no second fulfilment starts."""

import asyncio

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode

from tests.support.network import build_network
from tests.support.orders_api import order_payload

ONE_WAREHOUSE = {"near": {"type": "warehouse", "km_east": 5}}


async def _forget_closed_run(stack, order_id: str) -> None:
    """What the namespace's retention does to a closed run, without waiting days for it."""
    await stack.client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=stack.client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=order_id),
        )
    )
    handle = stack.client.get_workflow_handle(order_id)
    for _ in range(1200):  # deletion is asynchronous (the dev server takes ~40 s)
        try:
            await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return
            raise
        await asyncio.sleep(0.1)
    raise AssertionError(f"Temporal still describes {order_id} after deleting it")


async def test_resubmission_after_retention_returns_the_existing_order(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 5})
    payload = order_payload(net, [("tee", 1)])
    first = await stack.http.post("/v1/orders", json=payload)
    assert first.status_code == 201, first.text
    order_id = first.json()["order_id"]
    await stack.wait_for_status(order_id, "COMPLETED")
    await _forget_closed_run(stack, order_id)

    again = await stack.http.post("/v1/orders", json=payload)

    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["order_id"] == order_id
    assert again.json()["status"] == "COMPLETED"
    await asyncio.sleep(1)  # a second run, had one started, releases within this
    releases = {
        name: count
        for name, count in (await stack.sim_stats())["counts"].items()
        if name.startswith(f"release:{order_id}")
    }
    assert releases == {f"release:{order_id}-S1": 1}
