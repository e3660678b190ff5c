"""The Temporal Schedules OpenDOM needs, created idempotently when a worker starts."""

import contextlib
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from workflows.housekeeping import HousekeepingInput

HOUSEKEEPING_SCHEDULE_ID = "inventory-housekeeping"


async def ensure_housekeeping_schedule(
    client: Client, task_queue: str, every_seconds: float
) -> None:
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            "InventoryHousekeeping",
            HousekeepingInput(),
            id="inventory-housekeeping-run",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_seconds))]),
        # A slow run (big feed page) must not pile up runs behind it.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(HOUSEKEEPING_SCHEDULE_ID, schedule)
