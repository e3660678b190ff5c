"""`python -m cli up` as a person runs it, on free ports and a state folder of its own, so it never
meets a running `make run` or another test's stack."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stack.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
READY = "press Ctrl-C to stop everything"  # the launcher's last line once everything is up


@dataclass
class RunningUp:
    state_dir: Path
    api_url: str
    simulators_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def environment_without_settings() -> dict[str, str]:
    """The test runner's environment less every OpenDOM setting, so only the ones given count."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPENDOM_") and k not in ("DATABASE_URL", "PYTHONPATH")
    }


def distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def _start(base: Path, args: tuple[str, ...]) -> tuple[subprocess.Popen, RunningUp]:
    state_dir = base / "state"
    api, simulators, temporal, ui = distinct_free_ports(4)
    settings = {
        "OPENDOM_API_URL": f"http://127.0.0.1:{api}",
        "OPENDOM_CARRIER_URL": f"http://127.0.0.1:{simulators}",
        "OPENDOM_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
        "DATABASE_URL": f"sqlite:///{state_dir}/opendom.db",
    }
    log_path = base / "up.log"
    with open(log_path, "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "cli", "up", *args, "--state-dir", str(state_dir),
             "--ui-port", str(ui)],
            cwd=ROOT, env=environment_without_settings() | settings,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    running = RunningUp(
        state_dir, settings["OPENDOM_API_URL"], settings["OPENDOM_CARRIER_URL"], log_path
    )
    return up, running


def _stop(up: subprocess.Popen) -> None:
    up.send_signal(signal.SIGTERM)  # the launcher stops its children, as on Ctrl-C
    try:
        up.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(up.pid, signal.SIGKILL)
        up.wait()


@contextmanager
def opendom_up(base: Path, *args: str, up_seconds: float = 120) -> Iterator[RunningUp]:
    """`opendom up ARGS --state-dir <base>/state`, until it says it is running; stopped after."""
    up, running = _start(base, args)
    try:
        deadline = time.monotonic() + up_seconds
        while READY not in running.output():
            assert up.poll() is None, f"the stack exited:\n{running.output()[-3000:]}"
            assert time.monotonic() < deadline, f"not up in time:\n{running.output()[-3000:]}"
            time.sleep(0.2)
        yield running
    finally:
        _stop(up)


def opendom_up_exit(base: Path, *args: str, seconds: float = 120) -> tuple[int, str]:
    """`opendom up ARGS` expected to give up by itself: its exit code and its output."""
    up, running = _start(base, args)
    try:
        code = up.wait(timeout=seconds)
    finally:
        if up.poll() is None:
            _stop(up)
    return code, running.output()
