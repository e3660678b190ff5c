"""`opendom up`: the whole embedded stack in one command.

Starts the Temporal dev server (SQLite file under the state folder, UI on :8233, search attributes
registered at start), the node and carrier simulators, the API, and the worker; seeds the demo
network; submits a few demo orders; prints the URLs. Ctrl-C stops every process it started.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from temporalio.client import Client

from config import Settings
from contracts import search_attributes as sa
from ledger.db import create_schema, make_engine
from stack.demo import run_demo
from stack.demo_data import seed_demo_network
from stack.keys import ensure_demo_keys, keys_file
from stack.temporal_cli import temporal_cli_path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # children import the project's packages


class Stack:
    def __init__(self, settings: Settings, state_dir: Path, ui_port: int) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.ui_port = ui_port
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.logs = state_dir / "logs"
        self.secrets: dict[str, str] = {}  # reach children through their environment only

    def start(self, name: str, args: list[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (lives as long as the child)
        env = {**os.environ, **self.child_env(), **self.secrets}
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT
        )
        self.processes.append((name, process))

    def child_env(self) -> dict[str, str]:
        s = self.settings
        return {
            "DATABASE_URL": s.database_url,
            "OPENDOM_TEMPORAL_ADDRESS": s.temporal_address,
            "OPENDOM_API_URL": s.api_url,
            "OPENDOM_CARRIER_URL": s.carrier_url,
            "OPENDOM_TASK_QUEUE": s.task_queue,
            "OPENDOM_SLA_SCALE": str(s.sla_scale),
            "OPENDOM_SIMULATOR_LATENCY_SECONDS": str(s.simulator_latency_seconds),
            "OPENDOM_SIMULATOR_REJECT_RATE": str(s.simulator_reject_rate),
            "OPENDOM_SIMULATOR_FAILURE_RATE": str(s.simulator_failure_rate),
            "OPENDOM_SIMULATOR_TIMEOUT_RATE": str(s.simulator_timeout_rate),
            "OPENDOM_SIMULATOR_DUPLICATE_RATE": str(s.simulator_duplicate_rate),
            "OPENDOM_HOUSEKEEPING_EVERY_SECONDS": str(s.housekeeping_every_seconds),
            "OPENDOM_WORKFLOW_SANDBOX": str(s.workflow_sandbox).lower(),
        } | ({} if s.simulator_seed is None else {"OPENDOM_SIMULATOR_SEED": str(s.simulator_seed)})

    def check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited ({process.returncode}); see {self.logs}/{name}.log"
                )

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


def _port_of(url_or_address: str) -> tuple[str, int]:
    host_port = url_or_address.split("://")[-1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    return host, int(port)


def wait_for_port(address: str, what: str, stack: Stack, seconds: float = 60) -> None:
    host, port = _port_of(address)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stack.check_alive()
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not open {address} within {seconds:g}s")


def _refuse_busy_port(address: str, what: str) -> None:
    host, port = _port_of(address)
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) == 0:
            raise SystemExit(
                f"{what}: {host}:{port} is already in use; is OpenDOM already running?"
            )


def temporal_args(settings: Settings, state_dir: Path, ui_port: int) -> list[str]:
    host, port = _port_of(settings.temporal_address)
    return [
        temporal_cli_path(), "server", "start-dev",
        "--ip", host, "--port", str(port), "--ui-port", str(ui_port),
        "--db-filename", str(state_dir / "temporal.db"),
        # WAL keeps the SQLite file from halving throughput (../shared notes; measured here).
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        "--log-level", "warn",
        *sa.server_flags(),
    ]  # fmt: skip


def uvicorn_args(factory: str, url: str) -> list[str]:
    """An ASGI app factory served by uvicorn on `url`'s port, as the harnesses start it: no
    access log (it would cost more than the requests), keep-alive longer than any pause between
    phases, so a client never reuses a connection the server is closing."""
    port = url.rsplit(":", 1)[1]
    return [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
            "--port", port, "--no-access-log", "--log-level", "warning",
            "--timeout-keep-alive", "120"]  # fmt: skip


async def _wait_for_temporal(settings: Settings, stack: Stack) -> None:
    deadline = time.monotonic() + 60
    while True:
        stack.check_alive()
        try:
            await Client.connect(settings.temporal_address)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def _interrupt_on_sigterm() -> None:
    """`kill` or a supervisor's SIGTERM stops the children just like Ctrl-C does."""

    def _raise(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


def run_stack(settings: Settings, state_dir: Path, ui_port: int, demo_orders: int) -> None:
    _interrupt_on_sigterm()
    state_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(settings, state_dir, ui_port)
    python = sys.executable
    for address, what in [
        (settings.temporal_address, "Temporal"),
        (settings.api_url, "API"),
        (settings.carrier_url, "simulators"),
    ]:
        _refuse_busy_port(address, what)
    try:
        print(f"state folder: {state_dir.resolve()} (logs in {stack.logs})")
        stack.start("temporal", temporal_args(settings, state_dir, ui_port))
        wait_for_port(settings.temporal_address, "Temporal", stack)
        asyncio.run(_wait_for_temporal(settings, stack))
        print(f"Temporal dev server up on {settings.temporal_address}")

        engine = make_engine(settings.database_url)
        create_schema(engine)
        created = seed_demo_network(engine, settings.carrier_url)
        keys = ensure_demo_keys(engine, state_dir)
        engine.dispose()
        print(f"demo network seeded ({created} new stock positions)")
        stack.secrets = {
            "OPENDOM_SIMULATOR_API_KEY": keys["simulators"]["key"] or "",
            "OPENDOM_SIMULATOR_SIGNING_SECRET": keys["simulators"]["signing_secret"] or "",
        }

        _, sim_port = _port_of(settings.carrier_url)
        _, api_port = _port_of(settings.api_url)
        stack.start(
            "simulators",
            [
                python,
                "-m",
                "uvicorn",
                "--factory",
                "simulators.app:create_simulator_app_from_settings",
                "--host",
                "127.0.0.1",
                "--port",
                str(sim_port),
            ],
        )
        stack.start(
            "api",
            [
                python,
                "-m",
                "uvicorn",
                "--factory",
                "api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
            ],
        )
        stack.start("worker", [python, "worker.py"])
        wait_for_port(settings.carrier_url, "simulators", stack)
        wait_for_port(settings.api_url, "API", stack)
        _banner(settings, ui_port, keys_file(state_dir))
        if demo_orders:
            print(f"submitting {demo_orders} demo orders:")
            admin_key = keys["admin"]["key"] or ""
            outcome = asyncio.run(run_demo(settings.api_url, demo_orders, api_key=admin_key))
            print("demo orders:", ", ".join(f"{k} {v}" for k, v in sorted(outcome.items())))
        print("\nrunning; press Ctrl-C to stop everything")
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping…")
    finally:
        stack.stop()
        print("stopped")


def _banner(settings: Settings, ui_port: int, keys: Path) -> None:
    ui = f"http://127.0.0.1:{ui_port}"
    print(
        f"\nAPI keys (admin, ops, support, web channel, simulators) are in {keys}; for curl:\n"
        f"  export OPENDOM_KEY=$(python3 -c \"import json; print(json.load(open('{keys}'))"
        f"['admin']['key'])\")"
    )
    print(
        "\nOpenDOM is up\n"
        f"  API docs      {settings.api_url}/docs\n"
        f"  Temporal UI   {ui}/namespaces/{settings.temporal_namespace}/workflows\n"
        f"  orders by status: {ui}/namespaces/{settings.temporal_namespace}/workflows?query="
        "OrderStatus%3D%22COMPLETED%22\n"
        f"  simulators    {settings.carrier_url}/docs\n"
    )
