"""A worker started with another task queue or interval brings the housekeeping Schedule to them
(on the real dev server): a Schedule kept from an older start would start runs on a queue no
worker polls, and housekeeping would silently stop."""

from datetime import timedelta

from temporalio.client import ScheduleActionStartWorkflow

from contracts.ids import HOUSEKEEPING_SCHEDULE_ID
from contracts.starters import ensure_housekeeping_schedule


async def _queue_and_interval(stack) -> tuple[str, list[timedelta]]:
    description = await stack.client.get_schedule_handle(HOUSEKEEPING_SCHEDULE_ID).describe()
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    return action.task_queue, [i.every for i in description.schedule.spec.intervals]


async def test_a_changed_task_queue_or_interval_updates_the_housekeeping_schedule(stack) -> None:
    handle = stack.client.get_schedule_handle(HOUSEKEEPING_SCHEDULE_ID)
    try:
        await ensure_housekeeping_schedule(stack.client, "old-queue", 3600)
        assert await _queue_and_interval(stack) == ("old-queue", [timedelta(seconds=3600)])

        await ensure_housekeeping_schedule(stack.client, stack.settings.task_queue, 3600)
        assert await _queue_and_interval(stack) == (
            stack.settings.task_queue,
            [timedelta(seconds=3600)],
        )

        await ensure_housekeeping_schedule(stack.client, stack.settings.task_queue, 45)
        assert await _queue_and_interval(stack) == (
            stack.settings.task_queue,
            [timedelta(seconds=45)],
        )
    finally:
        await handle.delete()


async def test_an_unchanged_housekeeping_schedule_is_left_as_it_is(stack) -> None:
    handle = stack.client.get_schedule_handle(HOUSEKEEPING_SCHEDULE_ID)
    try:
        await ensure_housekeeping_schedule(stack.client, stack.settings.task_queue, 3600)
        before = (await handle.describe()).info.last_updated_at
        await ensure_housekeeping_schedule(stack.client, stack.settings.task_queue, 3600)
        assert (await handle.describe()).info.last_updated_at == before
    finally:
        await handle.delete()
