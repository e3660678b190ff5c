"""The engine's ceiling for the end-to-end load benchmark: a workflow with no business logic that
costs the Temporal server and worker what an order costs them in engine work.

An order's history is made of activities (regular ones: a task round trip through the server, and
local ones: run inside a workflow task, recorded as a marker) and of signals (node and carrier
callbacks). `BareOrderWorkflow` is told how many of each the order it stands for had
(`BareShape`, counted from the order's history) and does the same with no-op activities. Like a
node system answering a release, the no-op activity that stands for a release triggers the next
signal: it sends it, through the worker's client, right after it returns; the workflow waits for
it before going on. Payloads are tiny, which is part of what "no business logic" means.

Run a worker for it (the benchmark does, with the production worker's settings):

    .venv/bin/python -m benchmarks.bare_workflow --task-queue bare-ceiling
"""

import argparse
import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from enum import StrEnum

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

NO_OP_TIMEOUT = timedelta(seconds=30)


class BareName(StrEnum):
    """The bare workflow's own Temporal names, used on both sides: the benchmark's, not the
    product's (those are contracts/names.py)."""

    WORKFLOW = "BareOrderWorkflow"
    STEP = "bare_step"
    LOCAL_STEP = "bare_local_step"
    EVENT = "bare_event"


class BareShape(BaseModel):
    """What one order did in the engine: regular activities, local activities, signals."""

    activities: int
    local_activities: int = 0
    signals: int = 0


class StepInput(BaseModel):
    signal: bool = False


_signals_in_flight: set[asyncio.Task[None]] = set()


@activity.defn(name=BareName.STEP)
async def bare_step(step: StepInput) -> None:
    """No work. When asked, signals its workflow just after returning, as a node calls back
    after it accepted a release."""
    if step.signal:
        info = activity.info()
        handle = activity.client().get_workflow_handle(
            info.workflow_id, run_id=info.workflow_run_id
        )
        task = asyncio.create_task(handle.signal(BareName.EVENT))
        _signals_in_flight.add(task)
        task.add_done_callback(_signals_in_flight.discard)


@activity.defn(name=BareName.LOCAL_STEP)
async def bare_local_step() -> None:
    """No work, run as a local activity."""


@workflow.defn(name=BareName.WORKFLOW)
class BareOrderWorkflow:
    def __init__(self) -> None:
        self._signals = 0

    @workflow.signal(name=BareName.EVENT)
    def bare_event(self) -> None:
        self._signals += 1

    @workflow.run
    async def run(self, shape: BareShape) -> int:
        # Local activities are spread over the regular steps the way an order publishes its
        # state after each step; the first signals follow the first activities.
        locals_left = shape.local_activities
        for i in range(shape.activities):
            signal = i < shape.signals
            await workflow.execute_activity(
                bare_step, StepInput(signal=signal), start_to_close_timeout=NO_OP_TIMEOUT
            )
            if signal:
                await workflow.wait_condition(lambda n=i + 1: self._signals >= n)  # type: ignore[misc]
            share = -(-locals_left // (shape.activities - i))  # ceil: none left at the end
            for _ in range(share):
                await workflow.execute_local_activity(
                    bare_local_step, start_to_close_timeout=NO_OP_TIMEOUT
                )
            locals_left -= share
        return shape.activities + shape.local_activities


async def run_bare_worker(client: Client, task_queue: str, sandbox: bool) -> None:
    """A worker for the bare workflow with exactly the production worker's settings."""
    from worker import ACTIVITY_THREADS, worker_tuning

    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[BareOrderWorkflow],
            activities=[bare_step, bare_local_step],
            activity_executor=executor,
            **worker_tuning(sandbox),
        )
        await worker.run()


async def _main(task_queue: str) -> None:
    from config import load_settings
    from worker import cache_workflow_bytecode, connect

    logging.basicConfig(level=logging.WARNING)
    cache_workflow_bytecode()  # as the production worker does
    settings = load_settings()  # the same environment as the production worker's
    client = await connect(settings)
    await run_bare_worker(client, task_queue, settings.workflow_sandbox)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="worker for the bare (ceiling) workflow")
    parser.add_argument("--task-queue", default="bare-ceiling")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args().task_queue))
