"""The embedded stack's supervisor on real child processes: a crashed child is restarted after a
growing backoff and each restart is said; one that keeps crashing stops the stack with a reason;
stopping signals every child, kills one that will not go, and forgets the pids file."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from stack.supervisor import Child, GaveUp, RestartPolicy, Supervisor

CRASHES = [sys.executable, "-c", "import sys; sys.exit(3)"]
SLEEPS = [sys.executable, "-c", "import time; time.sleep(60)"]
IGNORES_SIGTERM = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True);"
    " time.sleep(60)",
]


def _supervisor(tmp_path: Path, said: list[str], **policy: float) -> Supervisor:
    return Supervisor(
        tmp_path / "logs",
        tmp_path / "pids.json",
        tmp_path,
        RestartPolicy(**policy),  # type: ignore[arg-type]
        say=said.append,
    )


def test_a_crashing_child_is_restarted_with_growing_backoff_then_given_up_on(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    supervisor = _supervisor(
        tmp_path, said, first_delay_seconds=0.1, max_delay_seconds=0.2, max_crashes=4
    )
    supervisor.start(Child("worker", CRASHES, dict(os.environ)))
    pids = set()
    with pytest.raises(GaveUp) as gave_up:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids.add(json.loads((tmp_path / "pids.json").read_text())["worker"])
            supervisor.supervise()
            time.sleep(0.02)
    supervisor.stop()

    assert said == [
        "worker exited with code 3; restarting in 0.1 s (restart 1)",
        "worker exited with code 3; restarting in 0.2 s (restart 2)",
        "worker exited with code 3; restarting in 0.2 s (restart 3)",
    ]
    assert "worker exited with code 3, its 4th crash in 300 s; giving up" in str(gave_up.value)
    assert len(pids) == 4  # started four times
    assert "restarting in 0.1 s (restart 1)" in (tmp_path / "logs" / "worker.log").read_text()


def test_crashes_older_than_the_window_do_not_count(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = _supervisor(
        tmp_path, said, first_delay_seconds=0.05, max_crashes=2, window_seconds=0.01
    )
    supervisor.start(Child("api", CRASHES, dict(os.environ)))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        supervisor.supervise()  # never raises: each crash is alone in its window
        time.sleep(0.02)
    supervisor.stop()
    assert len(said) >= 3
    assert all(line.endswith("restarting in 0.05 s (restart 1)") for line in said)


def test_stop_ends_every_child_killing_one_that_ignores_sigterm(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path, [])
    supervisor.start(Child("temporal", SLEEPS, dict(os.environ), stops_last=True))
    supervisor.start(Child("worker", IGNORES_SIGTERM, dict(os.environ), stop_seconds=0.5))
    pids = json.loads((tmp_path / "pids.json").read_text())
    assert set(pids) == {"launcher", "temporal", "worker"}
    assert pids["launcher"] == os.getpid()
    log = tmp_path / "logs" / "worker.log"
    for _ in range(100):  # its SIGTERM handler is in place
        if "ready" in log.read_text():
            break
        time.sleep(0.05)

    supervisor.stop()

    codes = {c.name: c.process.returncode for c in supervisor.children if c.process}
    assert codes == {"temporal": -15, "worker": -9}
    assert not (tmp_path / "pids.json").exists()
