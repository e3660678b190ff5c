"""The embedded stack's processes, kept running: a child that exits while the stack is up is
started again with the same command (the dev server on its same SQLite file and ports), after an
exponential backoff, and the launcher says so. One that keeps crashing (`max_crashes` within
`window_seconds`) stops the stack, saying which and why. The children's pids are kept in
<state dir>/pids.json, for ops and tests."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    max_crashes: int = 5
    window_seconds: float = 300.0

    def delay(self, crashes_in_window: int) -> float:
        """1 s, 2 s, 4 s … for the 1st, 2nd, 3rd crash in the window, at most the cap."""
        exponent = max(0, crashes_in_window - 1)
        return min(self.max_delay_seconds, self.first_delay_seconds * 2**exponent)


class GaveUp(RuntimeError):
    """A child crashed too often; the stack stops."""


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    # How long it may take to stop on its stop signal before it is killed (the worker drains).
    stop_seconds: float = 15.0
    # Stopped after the others: the server the others need while they stop (Temporal).
    stops_last: bool = False
    process: subprocess.Popen | None = None
    crashes: list[float] = field(default_factory=list)  # monotonic times, in the window
    restart_at: float | None = None  # when it is waiting out its backoff


class Supervisor:
    def __init__(
        self,
        logs: Path,
        pids_file: Path,
        cwd: Path,
        policy: RestartPolicy | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.logs = logs
        self.pids_file = pids_file
        self.cwd = cwd
        self.policy = policy or RestartPolicy()
        self.say = say
        self.children: list[Child] = []

    def start(self, child: Child) -> None:
        self.children.append(child)
        self._spawn(child)

    def _spawn(self, child: Child) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{child.name}.log", "ab") as log:  # the child keeps its own fd
            child.process = subprocess.Popen(
                child.args, stdout=log, stderr=subprocess.STDOUT, env=child.env, cwd=self.cwd
            )
        child.restart_at = None
        self._write_pids()

    def supervise(self) -> None:
        """One look at every child: note the ones that exited, restart the ones whose backoff is
        over. Raises GaveUp when one crashed `max_crashes` times within the window."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._spawn(child)
                continue
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                continue
            window = now - self.policy.window_seconds
            child.crashes = [t for t in child.crashes if t > window] + [now]
            crashes = len(child.crashes)
            log = self.logs / f"{child.name}.log"
            if crashes >= self.policy.max_crashes:
                raise GaveUp(
                    f"{child.name} exited with code {code}, its {crashes}th crash in "
                    f"{self.policy.window_seconds:g} s; giving up (see {log})"
                )
            delay = self.policy.delay(crashes)
            child.restart_at = now + delay
            line = f"{child.name} exited with code {code}; restarting in {delay:g} s (restart {crashes})"
            self.say(line)
            with open(log, "a") as out:
                out.write(f"--- opendom up: {line}\n")

    def stop(self) -> None:
        """SIGTERM to all but the `stops_last` children, which go after them (the worker drains
        its activities, which needs the Temporal server); one that overstays is killed."""
        first = [c for c in self.children if not c.stops_last]
        last = [c for c in self.children if c.stops_last]
        for group in (first, last):
            for child in group:
                if child.process is not None and child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            for child in group:
                _wait_or_kill(child)
        self.pids_file.unlink(missing_ok=True)

    def _write_pids(self) -> None:
        pids = {"launcher": os.getpid()} | {
            c.name: c.process.pid for c in self.children if c.process is not None
        }
        partial = self.pids_file.with_suffix(".tmp")
        partial.write_text(json.dumps(pids, indent=2))
        partial.replace(self.pids_file)  # a reader never sees half a file


def _wait_or_kill(child: Child) -> None:
    if child.process is None:
        return
    try:
        child.process.wait(timeout=child.stop_seconds)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()
