"""The worker's health check (cli.worker_health, compose's worker healthcheck) asks the real
Temporal whether a worker of this host polls the task queue."""

import asyncio

from cli.worker_health import problems


async def test_a_polling_worker_is_healthy_and_a_queue_nobody_polls_is_not(stack) -> None:
    # Temporal lists a poller once its first poll arrives, just after the worker starts
    # (compose gives the check a start period for the same reason).
    for _ in range(50):
        found = await problems(stack.settings)
        if not found:
            break
        await asyncio.sleep(0.2)
    assert found == []
    nobody = stack.settings.model_copy(update={"task_queue": "nobody-polls-this"})
    unpolled = await problems(nobody)
    assert len(unpolled) == 2 and all("nobody-polls-this" in p for p in unpolled)
    assert await problems(stack.settings, host="another-host") != []
