"""The OpenDOM worker: runs order workflows and their activities. `python worker.py`."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.fulfilment import FulfilmentActivities
from activities.housekeeping import HousekeepingActivities
from activities.ledger import LedgerActivities
from activities.outage import OutageActivities
from connectors.carrier import CarrierConnector
from connectors.erp import ErpFeedConnector
from connectors.http import JsonHttpClient
from connectors.nodes import NodeConnectors
from domain.sla import default_sla_policy
from ledger.db import create_schema, make_engine
from stack.schedules import ensure_housekeeping_schedule
from stack.settings import Settings, load_settings
from workflows.housekeeping import InventoryHousekeepingWorkflow
from workflows.order import OrderWorkflow
from workflows.outage import NodeOutageWorkflow

# Sync ledger activities run here; sized above the activity slots so none waits for a thread.
ACTIVITY_THREADS = 32


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


@asynccontextmanager
async def order_worker(client: Client, settings: Settings) -> AsyncIterator[Worker]:
    """A running worker for `settings.task_queue`; stops (after in-flight tasks) on exit."""
    engine = make_engine(settings.database_url)
    create_schema(engine)
    http = JsonHttpClient("node-and-carrier-systems")
    ledger = LedgerActivities(engine, default_sla_policy(settings.sla_scale))
    housekeeping = HousekeepingActivities(engine, ErpFeedConnector())
    outage = OutageActivities(engine, client)
    fulfilment = FulfilmentActivities(
        engine, NodeConnectors(http), CarrierConnector(http, settings.carrier_url)
    )
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[OrderWorkflow, InventoryHousekeepingWorkflow, NodeOutageWorkflow],
            activities=[
                ledger.allocate_stock,
                ledger.release_reservations,
                ledger.fulfil_reservations,
                ledger.project_order,
                fulfilment.release_to_node,
                fulfilment.cancel_at_node,
                fulfilment.dispatch_at_node,
                fulfilment.buy_label,
                housekeeping.expire_holds,
                housekeeping.publish_availability_events,
                housekeeping.list_feed_sources,
                housekeeping.fetch_stock_deltas,
                housekeeping.apply_pulled_deltas,
                outage.find_orders_at_node,
                outage.move_order_away,
                outage.degrade_unhealthy_nodes,
            ],
            activity_executor=executor,
            max_concurrent_activities=ACTIVITY_THREADS,
        )
        async with worker:
            yield worker
    await http.aclose()
    engine.dispose()


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    settings = load_settings()
    client = await connect(settings)
    async with order_worker(client, settings):
        await ensure_housekeeping_schedule(
            client, settings.task_queue, settings.housekeeping_every_seconds
        )
        logging.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
