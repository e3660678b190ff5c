"""Run the housekeeping workflow once, now, instead of waiting for its Schedule."""

import uuid

from workflows.housekeeping import HousekeepingInput, HousekeepingResult


async def run_housekeeping(stack) -> HousekeepingResult:  # type: ignore[no-untyped-def]
    return await stack.client.execute_workflow(
        "InventoryHousekeeping",
        HousekeepingInput(),
        id=f"housekeeping-test-{uuid.uuid4().hex[:6]}",
        task_queue=stack.settings.task_queue,
        result_type=HousekeepingResult,
    )
