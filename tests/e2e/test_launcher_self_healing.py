"""`opendom up` (what `make run` runs) heals itself: a SIGKILLed worker, and then a SIGKILLed
Temporal dev server, are started again by the launcher (the dev server on its same SQLite file
and ports), say so, and the orders submitted around each crash still complete, with no manual
step. The children's pids are in <state-dir>/pids.json, where this test (and ops) find them."""

import copy
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.opendom_up import ROOT, RunningUp, opendom_up

ORDER = json.loads((ROOT / "examples" / "order.json").read_text())
ORDERS_PER_CRASH = 4
CHILDREN = {"temporal", "simulators", "api", "worker"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUp]:
    with opendom_up(tmp_path_factory.mktemp("healing"), "--demo-orders", "0") as up:
        yield up
        last_pids = _pids(up)
    # SIGTERM to the launcher still stops everything, the restarted children included.
    assert up.output().rstrip().endswith("stopped"), up.output()[-2000:]
    assert [name for name, pid in last_pids.items() if _alive(pid)] == []
    assert not (up.state_dir / "pids.json").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pids(running: RunningUp) -> dict[str, int]:
    return json.loads((running.state_dir / "pids.json").read_text())


def _admin(running: RunningUp) -> httpx.Client:
    keys = json.loads((running.state_dir / "keys.json").read_text())
    return httpx.Client(
        base_url=running.api_url,
        headers={"authorization": f"Bearer {keys['admin']['key']}"},
        timeout=30,
    )


def _submit(admin: httpx.Client, prefix: str) -> list[str]:
    order_ids = []
    for n in range(ORDERS_PER_CRASH):
        order = copy.deepcopy(ORDER) | {"external_id": f"{prefix}-{n}"}
        response = admin.post("/v1/orders", json=order)
        assert response.status_code == 201, response.text
        order_ids.append(response.json()["order_id"])
    return order_ids


def _all_complete(admin: httpx.Client, order_ids: list[str], seconds: float = 150) -> None:
    """Polls through the crash: while a process is down the API may refuse or be unreachable."""
    deadline = time.monotonic() + seconds
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        for order_id in order_ids:
            try:
                response = admin.get(f"/v1/orders/{order_id}")
            except httpx.TransportError:
                continue
            if response.status_code == 200:
                statuses[order_id] = response.json()["status"]
        if len(statuses) == len(order_ids) and set(statuses.values()) == {"COMPLETED"}:
            return
        time.sleep(0.5)
    raise AssertionError(f"orders not all COMPLETED in {seconds:g} s: {statuses}")


def _restarted(running: RunningUp, name: str, old_pid: int, seconds: float = 60) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = _pids(running).get(name)
        if pid and pid != old_pid:
            return pid
        time.sleep(0.2)
    raise AssertionError(f"{name} not restarted:\n{running.output()[-3000:]}")


def test_the_launcher_records_every_childs_pid(running: RunningUp) -> None:
    pids = _pids(running)
    assert set(pids) >= CHILDREN, pids
    for pid in pids.values():
        os.kill(pid, 0)  # alive


def test_a_killed_worker_is_restarted_and_orders_still_complete(running: RunningUp) -> None:
    with _admin(running) as admin:
        order_ids = _submit(admin, "healing-worker")
        old = _pids(running)["worker"]
        os.kill(old, signal.SIGKILL)
        _restarted(running, "worker", old)
        _all_complete(admin, order_ids)
    assert "worker exited with code -9; restarting in" in running.output()


def test_a_killed_temporal_dev_server_is_restarted_and_orders_still_complete(
    running: RunningUp,
) -> None:
    with _admin(running) as admin:
        order_ids = _submit(admin, "healing-temporal")
        old = _pids(running)["temporal"]
        os.kill(old, signal.SIGKILL)
        _restarted(running, "temporal", old)
        _all_complete(admin, order_ids)
        # The same SQLite file: orders from before the crash are still known, and new ones run.
        _all_complete(admin, _submit(admin, "healing-after"))
    assert "temporal exited with code -9; restarting in" in running.output()
    assert Path(running.state_dir / "temporal.db").exists()


def test_a_killed_api_is_restarted_and_answers_again(running: RunningUp) -> None:
    old = _pids(running)["api"]
    os.kill(old, signal.SIGKILL)
    _restarted(running, "api", old)
    with _admin(running) as admin:
        deadline = time.monotonic() + 60
        while True:
            try:
                if admin.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, running.output()[-2000:]
            time.sleep(0.2)
        _all_complete(admin, _submit(admin, "healing-api"))
    assert "api exited with code -9; restarting in" in running.output()


def test_ctrl_c_stops_every_child_and_restarts_none(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the launcher and its children together (one process group):
    the children exiting then is the stop, not a crash to heal."""
    with opendom_up(tmp_path, "--no-demo") as up:
        pids = _pids(up)
        os.killpg(pids["launcher"], signal.SIGINT)  # the launcher leads its own group
        deadline = time.monotonic() + 60
        while not up.output().rstrip().endswith("stopped"):
            assert time.monotonic() < deadline, up.output()[-2000:]
            time.sleep(0.2)
    assert [name for name, pid in pids.items() if _alive(pid)] == []
    assert "restarting" not in up.output()
