"""Run the housekeeping workflow once, now, instead of waiting for its Schedule."""

import uuid

from contracts.housekeeping import HousekeepingResult
from contracts.starters import run_housekeeping_now


async def run_housekeeping(stack) -> HousekeepingResult:  # type: ignore[no-untyped-def]
    return await run_housekeeping_now(
        stack.client, f"housekeeping-test-{uuid.uuid4().hex[:6]}", stack.settings.task_queue
    )
