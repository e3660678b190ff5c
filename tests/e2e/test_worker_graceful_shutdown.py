"""SIGTERM (a container stop, `kill`, the launcher) stops worker.py gracefully: it stops polling,
lets in-flight activities finish within its shutdown timeout and exits 0, instead of dying on
the signal (or, as PID 1 in a container, ignoring it until SIGKILL)."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI, Request

from api.app import create_app
from cli.worker_health import problems
from config import Settings
from contracts.names import ActivityName
from stack.servers import ServerThread, free_port
from tests.support.network import build_network
from tests.support.orders_api import order_payload

ROOT = Path(__file__).resolve().parents[2]
SHUTDOWN_SECONDS = 5


def start_worker(settings, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "OPENDOM_TEMPORAL_ADDRESS": settings.temporal_address,
        "OPENDOM_TASK_QUEUE": settings.task_queue,
        "OPENDOM_CARRIER_URL": settings.carrier_url,
        "OPENDOM_WORKER_SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS),
    }
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def test_sigterm_drains_the_worker_and_it_exits_0_within_its_shutdown_timeout(
    stack, tmp_path: Path
) -> None:
    settings = stack.settings.model_copy(update={"task_queue": f"term-{uuid.uuid4().hex[:6]}"})
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        for _ in range(150):  # polling: Temporal lists it as a poller of its queue
            if not await problems(settings):
                break
            assert worker.poll() is None, log.read_text()
            await asyncio.sleep(0.2)
        assert await problems(settings) == [], log.read_text()

        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, SHUTDOWN_SECONDS + 10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert code == 0, log.read_text()
    assert "draining" in log.read_text()


def slow_node_app(arrived: threading.Event, answer_after_seconds: float) -> FastAPI:
    """A node system that takes its time to acknowledge a release."""
    app = FastAPI()

    @app.post("/nodes/{node_id}/{resource}")
    async def release(node_id: str, resource: str, request: Request) -> dict:
        body = await request.json()
        arrived.set()
        await asyncio.sleep(answer_after_seconds)
        return {"shipment_id": body["shipment_id"], "status": "received", "node_reference": "R1"}

    return app


async def test_sigterm_lets_an_in_flight_node_release_finish_before_the_worker_exits(
    stack, tmp_path: Path
) -> None:
    settings = stack.settings.model_copy(update={"task_queue": f"drain-{uuid.uuid4().hex[:6]}"})
    arrived = threading.Event()
    node_system = ServerThread(slow_node_app(arrived, answer_after_seconds=2)).start()
    api = ServerThread(create_app(settings)).start()
    net = build_network(stack.engine, node_system.url, {"dc": {"km_east": 3}}, {("dc", "tee"): 2})
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        headers = {"authorization": f"Bearer {stack.admin.key}"}
        async with httpx.AsyncClient(base_url=api.url, timeout=60, headers=headers) as http:
            response = await http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))
        assert response.status_code == 201, response.text
        order_id = response.json()["order_id"]
        assert await asyncio.to_thread(arrived.wait, 60), log.read_text()

        worker.send_signal(signal.SIGTERM)  # the release is waiting on the node's answer
        code = await asyncio.to_thread(worker.wait, SHUTDOWN_SECONDS + 10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        api.stop()
        node_system.stop()

    assert code == 0, log.read_text()
    history = await stack.client.get_workflow_handle(order_id).fetch_history()
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    completed = [
        scheduled[e.activity_task_completed_event_attributes.scheduled_event_id]
        for e in history.events
        if e.HasField("activity_task_completed_event_attributes")
    ]
    assert completed == [ActivityName.RELEASE_TO_NODE], log.read_text()


async def test_sigterm_stops_a_worker_still_waiting_for_temporal(tmp_path: Path) -> None:
    """Under `opendom up` a worker restarted while the dev server is down waits for it; a stop
    then must not wait out the whole connection wait."""
    unreachable = f"127.0.0.1:{free_port()}"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/ledger.db", temporal_address=unreachable
    )
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        for _ in range(200):
            if "Temporal not reachable yet" in log.read_text():
                break
            await asyncio.sleep(0.1)
        assert "Temporal not reachable yet" in log.read_text(), log.read_text()
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert code == 0, log.read_text()
