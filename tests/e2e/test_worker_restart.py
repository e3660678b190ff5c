"""A worker killed (SIGKILL) in the middle of orders and started again finishes every order
exactly once: one shipment, one label, one stock movement each."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from sqlmodel import col, select

from api.app import create_app
from ledger.db import transaction
from ledger.tables import StockPosition
from stack.servers import ServerThread
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import build_network
from tests.support.orders_api import order_payload

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 24


def start_worker(settings) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "OPENDOM_TEMPORAL_ADDRESS": settings.temporal_address,
        "OPENDOM_TASK_QUEUE": settings.task_queue,
        "OPENDOM_CARRIER_URL": settings.carrier_url,
        "OPENDOM_SLA_SCALE": "0.01",
    }
    return subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_killed_worker_restarts_and_finishes_orders_exactly_once(stack) -> None:
    settings = stack.settings.model_copy(update={"task_queue": f"restart-{uuid.uuid4().hex[:6]}"})
    api = ServerThread(create_app(settings)).start()
    net = build_network(
        stack.engine,
        stack.simulator_url,
        {"near": {"type": "warehouse", "km_east": 5}, "far": {"type": "store", "km_east": 9}},
        {("near", "tee"): ORDERS, ("far", "tee"): ORDERS},
    )
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        config = (await sim.get("/openapi.json")).status_code  # simulator is up
        assert config == 200
        await sim.put(
            "/sim/config", json={**_sim_config(stack), "latency_seconds": 0.3, "seed": 11}
        )
    worker = start_worker(settings)
    try:
        headers = {"authorization": f"Bearer {stack.admin.key}"}
        async with httpx.AsyncClient(base_url=api.url, timeout=60, headers=headers) as http:
            order_ids = []
            for _ in range(ORDERS):
                response = await http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))
                assert response.status_code == 201, response.text
                order_ids.append(response.json()["order_id"])
            await _until_some_are_mid_flight(stack, order_ids)

            worker.send_signal(signal.SIGKILL)
            worker.wait()
            mid_flight = await _statuses(stack, order_ids)
            worker = start_worker(settings)

            finished = [
                await stack.wait_for_status(o, "COMPLETED", deadline_seconds=120) for o in order_ids
            ]
    finally:
        worker.kill()
        worker.wait()
        api.stop()
        async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
            await sim.put("/sim/config", json={**_sim_config(stack), "latency_seconds": 0.05})

    assert any(s not in ("COMPLETED", "RECEIVED") for s in mid_flight.values()), mid_flight
    stats = await stack.sim_stats()
    for order in finished:
        [shipment] = order["shipments"]
        label = stats["labels"][shipment["shipment_id"]]
        assert shipment["tracking_number"] == label["tracking_number"]
    shipment_ids = {o["shipments"][0]["shipment_id"] for o in finished}
    assert all(stats["counts"].get(f"dispatch:{sid}", 0) >= 1 for sid in shipment_ids)
    with transaction(stack.engine) as session:
        positions = session.exec(
            select(StockPosition).where(col(StockPosition.sku) == net.sku("tee"))
        ).all()
        assert sum(p.on_hand for p in positions) == 2 * ORDERS - ORDERS  # one unit left per order
        assert sum(p.reserved for p in positions) == 0
    assert_ledger_balances(stack.engine, order_ids)
    print(
        f"\nkilled the worker with orders at {sorted(set(mid_flight.values()))}; "
        f"{len(finished)} orders completed, {len(shipment_ids)} shipments, "
        f"{len(shipment_ids)} labels"
    )


def _sim_config(stack) -> dict:
    return {
        "api_url": stack.api_url,
        "api_key": stack.gateway.key,
        "signing_secret": stack.gateway.signing_secret,
    }


async def _statuses(stack, order_ids: list[str]) -> dict[str, str]:
    statuses = {}
    for order_id in order_ids:
        response = await stack.http.get(f"/v1/orders/{order_id}")
        statuses[order_id] = response.json()["status"] if response.status_code == 200 else "-"
    return statuses


async def _until_some_are_mid_flight(stack, order_ids: list[str]) -> None:
    for _ in range(300):
        statuses = await _statuses(stack, order_ids)
        in_flight = [s for s in statuses.values() if s in ("RELEASED", "IN_FULFILLMENT")]
        if len(in_flight) >= len(order_ids) // 3:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"orders never got under way: {statuses}")
