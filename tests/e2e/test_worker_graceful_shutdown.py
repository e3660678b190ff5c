"""SIGTERM (a container stop, `kill`, the launcher) stops worker.py gracefully: it stops polling,
lets in-flight activities finish within its shutdown timeout and exits 0, instead of dying on
the signal (or, as PID 1 in a container, ignoring it until SIGKILL)."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from cli.worker_health import problems

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
