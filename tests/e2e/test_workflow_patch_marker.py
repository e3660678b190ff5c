"""The other half of tests/unit/test_workflow_versioning.py: an order run on a worker whose code
takes a patch's new branch records the patch marker, and that history replays on the patched
code and on the code that later deprecates the patch, but not on code without it. So the stage
after `deprecate_patch` (removing the call) waits until these orders have closed too
(docs/versioning.md)."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker
from temporalio.workflow import NondeterminismError

from connectors.http import JsonHttpClient
from contracts.starters import start_order
from domain.orders import Order
from tests.support.network import build_network
from tests.support.orders_api import order_payload
from tests.unit.test_workflow_versioning import (
    PROOF_PATCH,
    TimerAtStartDeprecated,
    TimerAtStartPatched,
)
from worker import activity_methods, activity_objects
from workflows.order import OrderWorkflow

PATCH_MARKER = "core_patch"  # the SDK core's marker name for `workflow.patched`


async def _replay_failure(cls: type, history) -> Exception | None:
    replayer = Replayer(
        workflows=[cls],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    return (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure


async def test_order_run_on_patched_code_replays_on_patched_and_deprecated_code(stack) -> None:
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"near": {"type": "warehouse", "km_east": 5}},
        {("near", "tee"): 5},
    )
    payload = order_payload(net, [("tee", 1)])
    order_id = f"order-web-{payload['external_id']}"
    order = Order.model_validate(
        {**payload, "order_id": order_id, "submitted_at": datetime.now(UTC)}
    )
    # Its own task queue, so only the patched code runs this order (the stack's worker runs
    # today's code on the stack's queue).
    task_queue = f"patched-{uuid.uuid4().hex[:8]}"
    http = JsonHttpClient("patched-worker")
    activities = activity_methods(
        *activity_objects(stack.engine, stack.client, stack.settings, http)
    )
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(
            stack.client,
            task_queue=task_queue,
            workflows=[TimerAtStartPatched],
            activities=activities,
            activity_executor=executor,
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            assert await start_order(stack.client, order, task_queue)
            await stack.wait_for_status(order_id, "COMPLETED")
            history = await stack.client.get_workflow_handle(order_id).fetch_history()
    await http.aclose()

    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    patches = [
        m.details["patch-data"].payloads[0].data for m in markers if m.marker_name == PATCH_MARKER
    ]
    # The proof's patch, once, beside those today's code records (contracts/patches.py).
    assert sum(PROOF_PATCH.encode() in data for data in patches) == 1
    assert any(e.HasField("timer_fired_event_attributes") for e in history.events)

    assert await _replay_failure(TimerAtStartPatched, history) is None
    assert await _replay_failure(TimerAtStartDeprecated, history) is None
    failure = await _replay_failure(OrderWorkflow, history)
    assert isinstance(failure, NondeterminismError), failure
    assert "[TMPRL1100] Nondeterminism error" in str(failure)
