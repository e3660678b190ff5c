"""The OpenDOM worker: runs order workflows and their activities. `python worker.py`."""

import asyncio
import contextlib
import inspect
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.backorders import BackorderActivities
from activities.bid_prices import BidPriceActivities
from activities.fulfilment import FulfilmentActivities
from activities.housekeeping import HousekeepingActivities
from activities.ledger import LedgerActivities
from activities.outage import OutageActivities
from activities.parcels import ParcelActivities
from config import Settings, load_settings
from connectors.carrier import CarrierConnector
from connectors.erp import ErpFeedConnector
from connectors.http import JsonHttpClient
from connectors.nodes import NodeConnectors
from contracts.starters import ensure_bid_price_schedule, ensure_housekeeping_schedule
from domain.node_health import NodeHealthRule
from domain.sla import default_sla_policy
from ledger.db import make_engine, prepare_schema
from workflows.bid_prices import BidPriceRefreshWorkflow
from workflows.housekeeping import InventoryHousekeepingWorkflow
from workflows.order import OrderWorkflow
from workflows.outage import NodeOutageWorkflow

# Worker tuning (docs/worker-tuning.md; measured with `python -m benchmarks.e2e_load`, figures in
# benchmarks/README.md). The load benchmark's bare ceiling workflow runs with the same settings.
#
# Regular activity slots. The order path's regular activities are the connector calls (release,
# label, dispatch, cancel): async, waiting on HTTP, so slots are cheap; the sync housekeeping and
# outage activities need a thread each.
ACTIVITY_SLOTS = 32
# Local activity slots: the order's ledger and read-model calls (allocate, release, fulfil,
# project), each one database transaction run inside the workflow task. More than this many at
# once would only queue on the database (SQLite has a single writer).
LOCAL_ACTIVITY_SLOTS = 16
# Sync activities, regular or local, run on this pool: one thread per slot, so none ever waits
# for a thread while its timeout runs.
ACTIVITY_THREADS = ACTIVITY_SLOTS + LOCAL_ACTIVITY_SLOTS


def worker_tuning(sandbox: bool) -> dict[str, Any]:
    """The `Worker` options beyond the task queue, workflows and activities.

    Pollers, workflow task slots and the sticky cache stay at the SDK's defaults (5 + 5
    pollers, 1,000 cached workflows): the load benchmark found no gain in changing them.

    The sandbox (`Settings.workflow_sandbox`) imports each workflow's module afresh for every
    workflow run and re-enters itself for every payload it converts, a large share of the
    worker's CPU per order. Production runs without it; the test suite runs with it."""
    runner = SandboxedWorkflowRunner() if sandbox else UnsandboxedWorkflowRunner()
    return {
        "workflow_runner": runner,
        "max_concurrent_activities": ACTIVITY_SLOTS,
        "max_concurrent_local_activities": LOCAL_ACTIVITY_SLOTS,
    }


def cache_workflow_bytecode() -> None:
    """The sandbox imports each workflow's module afresh for every workflow run. With bytecode
    writing off (PYTHONDONTWRITEBYTECODE, usual in containers) and no `__pycache__` to read,
    every such import compiles `workflows/order.py` again, a visible share of the worker's CPU
    under load. Writing bytecode lets
    the first run compile it and later ones read it. Where the source folder is read-only (an
    installed package), Python writes nothing and falls back to compiling, as before."""
    sys.dont_write_bytecode = False


async def connect(settings: Settings, wait_seconds: float = 120) -> Client:
    """Waits for the engine: a worker (re)started while the server restarts must not die."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=pydantic_data_converter,
            )
        except RuntimeError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            logging.warning("Temporal not reachable yet (%s); retrying", exc)
            await asyncio.sleep(1)


WORKFLOWS = (
    OrderWorkflow,
    InventoryHousekeepingWorkflow,
    NodeOutageWorkflow,
    BidPriceRefreshWorkflow,
)


def activity_objects(
    engine: Engine, client: Client, settings: Settings, http: JsonHttpClient
) -> tuple[object, ...]:
    """The objects whose `@activity.defn` methods the worker registers, with their resources."""
    health_rule = NodeHealthRule(
        window_seconds=settings.node_health_window_seconds,
        min_incidents=settings.node_health_min_incidents,
        max_incident_share=settings.node_health_max_incident_share,
        max_late_share=settings.node_health_max_late_share,
    )
    return (
        LedgerActivities(
            engine,
            default_sla_policy(settings.sla_scale),
            exclusion_forget_seconds=settings.exclusion_forget_seconds,
            release_day_seconds=settings.release_day_seconds,
        ),
        FulfilmentActivities(
            engine,
            NodeConnectors(http),
            CarrierConnector(http, settings.carrier_url),
            simulator_url=settings.carrier_url,
        ),
        HousekeepingActivities(engine, ErpFeedConnector()),
        OutageActivities(engine, client, health_rule),
        BidPriceActivities(engine),
        BackorderActivities(
            engine,
            client,
            batch=settings.backorder_sweep_batch,
            forget_exclusions_after_seconds=settings.exclusion_forget_seconds,
            scan=settings.backorder_sweep_scan,
        ),
        ParcelActivities(
            engine,
            CarrierConnector(http, settings.carrier_url),
            window_scale=settings.sla_scale,
        ),
    )


def activity_methods(*objects: object) -> list[Callable[..., Any]]:
    """Every `@activity.defn` method of the objects: a new activity is registered by being
    defined, never forgotten from a hand-written list."""
    return [
        method
        for obj in objects
        for name, _ in inspect.getmembers(type(obj), inspect.isfunction)
        if activity._Definition.from_callable(method := getattr(obj, name)) is not None
    ]


@asynccontextmanager
async def order_worker(client: Client, settings: Settings) -> AsyncIterator[Worker]:
    """A running worker for `settings.task_queue`; stops (after in-flight tasks) on exit."""
    engine = make_engine(settings.database_url)
    # In production the migration job has run; an unmigrated or newer database stops the worker.
    prepare_schema(engine, migrate=settings.migrates_at_start)
    http = JsonHttpClient("node-and-carrier-systems")
    activities = activity_methods(*activity_objects(engine, client, settings, http))
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=list(WORKFLOWS),
            activities=activities,
            activity_executor=executor,
            # Leaving the block (SIGTERM) lets in-flight activities finish this long, then
            # cancels them; Temporal retries whatever was cut short on another worker.
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
            **worker_tuning(settings.workflow_sandbox),
        )
        async with worker:
            yield worker
    await http.aclose()
    engine.dispose()


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    # httpx logs every connector request at INFO: three lines per order that say nothing the
    # workflow history does not.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cache_workflow_bytecode()
    settings = load_settings()
    stopping = stop_on_signals()
    connecting = asyncio.ensure_future(connect(settings))
    # A stop while Temporal is still down (a restart under `opendom up`) must not wait it out.
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():
        connecting.cancel()
        logging.info("%s before Temporal answered: exiting", stopping.result().name)
        return
    client = connecting.result()
    async with order_worker(client, settings):
        await ensure_housekeeping_schedule(
            client, settings.task_queue, settings.housekeeping_every_seconds
        )
        await ensure_bid_price_schedule(
            client, settings.task_queue, settings.bid_price_interval_seconds
        )
        logging.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        received = await stopping
        logging.info(
            "%s: draining in-flight activities (at most %g s), then exiting",
            received.name,
            settings.worker_shutdown_seconds,
        )
    logging.info("worker stopped")


def stop_on_signals() -> "asyncio.Future[signal.Signals]":
    """Resolves with the first SIGTERM or SIGINT. Without a handler SIGTERM kills the process
    mid-activity, and as a container's PID 1 it is ignored until SIGKILL."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda s=signum: received.done() or received.set_result(s))
    return received


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the handlers are in place
        asyncio.run(main())
