"""`opendom up`: the whole embedded stack in one command.

Starts the Temporal dev server (SQLite file under the state folder, UI on :8233, search attributes
registered at start), the node and carrier simulators, the API, and the worker, then prints the
URLs. A process that crashes is started again after a backoff, and the launcher says so
(`stack/supervisor.py`; the pids in <state dir>/pids.json); Ctrl-C or SIGTERM stops every process
it started. What it runs on is a `Network`:

- the demo (plain `opendom up`, `make run`): seeds the demo network, issues the demo keys and
  submits a few demo orders;
- your network (`--network DIR`): imports DIR's network files, issues an admin key only;
- an empty one (`--no-demo`): nodes come later, by the API or `opendom network import`.
"""

import asyncio
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from config import Settings
from contracts import search_attributes as sa
from ledger.db import create_schema, make_engine, transaction
from security.keys import authenticate
from services import api_clients
from services.network_files import NetworkFilesRefused, import_folder
from stack.demo import run_demo
from stack.demo_data import seed_demo_network
from stack.keys import ACTOR, DEMO_KEYS, ensure_demo_keys, keys_file
from stack.supervisor import Child, GaveUp, RestartPolicy, Supervisor
from stack.temporal_cli import temporal_cli_path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # children import the project's packages
PIDS_FILE = "pids.json"  # in the state folder: the launcher's and each child's pid


class Stack:
    """The stack's processes under a `Supervisor`: restarted when they crash, stopped together."""

    def __init__(
        self,
        settings: Settings,
        state_dir: Path,
        ui_port: int,
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.ui_port = ui_port
        self.logs = state_dir / "logs"
        self.secrets: dict[str, str] = {}  # reach children through their environment only
        self.supervisor = Supervisor(self.logs, state_dir / PIDS_FILE, PROJECT_ROOT, restart_policy)

    @property
    def processes(self) -> list[tuple[str, subprocess.Popen]]:
        """Each child's current process (a restarted child: its new one)."""
        return [(c.name, c.process) for c in self.supervisor.children if c.process is not None]

    def start(self, name: str, args: list[str]) -> None:
        env = {**os.environ, **self.child_env(), **self.secrets}
        # The worker drains its in-flight activities on SIGTERM; the rest stop at once.
        grace = self.settings.worker_shutdown_seconds + 5 if name == "worker" else 15
        child = Child(name, args, env, stop_seconds=grace, stops_last=name == "temporal")
        self.supervisor.start(child)

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
            "OPENDOM_BID_PRICE_INTERVAL_SECONDS": str(s.bid_price_interval_seconds),
            "OPENDOM_WORKFLOW_SANDBOX": str(s.workflow_sandbox).lower(),
            "OPENDOM_WORKER_SHUTDOWN_SECONDS": str(s.worker_shutdown_seconds),
        } | ({} if s.simulator_seed is None else {"OPENDOM_SIMULATOR_SEED": str(s.simulator_seed)})

    def check_alive(self) -> None:
        """For harnesses that measure (the benchmarks): a crash ends the run rather than being
        restarted into the figures."""
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited ({process.returncode}); see {self.logs}/{name}.log"
                )

    def supervise(self) -> None:
        """Restarts what crashed (after its backoff); GaveUp when one keeps crashing."""
        self.supervisor.supervise()

    def stop(self) -> None:
        self.supervisor.stop()


def _port_of(url_or_address: str) -> tuple[str, int]:
    host_port = url_or_address.split("://")[-1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    return host, int(port)


def wait_for_port(address: str, what: str, stack: Stack, seconds: float = 60) -> None:
    host, port = _port_of(address)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stack.supervise()
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
        stack.supervise()
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


@dataclass(frozen=True)
class Network:
    """What the stack runs on. The demo (the default) is seeded, gets the demo keys and demo
    orders; `directory` is imported instead (your network files); neither: an empty network."""

    demo: bool = True
    directory: Path | None = None
    simulators: bool = True  # the node and carrier simulators (the demo always has them)
    demo_orders: int = 5

    @property
    def key_names(self) -> list[str]:
        """The keys the stack issues: the demo's, or an admin key (and the simulators' gateway
        key, which their callbacks sign with) for a network of your own."""
        if self.demo:
            return list(DEMO_KEYS)
        return ["admin", "simulators"] if self.simulators else ["admin"]


def run_stack(settings: Settings, state_dir: Path, ui_port: int, network: Network) -> None:
    _interrupt_on_sigterm()
    state_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(settings, state_dir, ui_port)
    python = sys.executable
    ports = [(settings.temporal_address, "Temporal"), (settings.api_url, "API")]
    if network.simulators:
        ports.append((settings.carrier_url, "simulators"))
    for address, what in ports:
        _refuse_busy_port(address, what)
    try:
        print(f"state folder: {state_dir.resolve()} (logs in {stack.logs})")
        stack.start("temporal", temporal_args(settings, state_dir, ui_port))
        wait_for_port(settings.temporal_address, "Temporal", stack)
        asyncio.run(_wait_for_temporal(settings, stack))
        print(f"Temporal dev server up on {settings.temporal_address}")

        engine = make_engine(settings.database_url)
        create_schema(engine)
        print(_load_network(engine, settings, network))
        keys = (
            ensure_demo_keys(engine, state_dir)
            if network.demo
            else ensure_stack_keys(engine, state_dir, network.key_names)
        )
        engine.dispose()
        if network.simulators:
            stack.secrets = {
                "OPENDOM_SIMULATOR_API_KEY": keys["simulators"]["key"] or "",
                "OPENDOM_SIMULATOR_SIGNING_SECRET": keys["simulators"]["signing_secret"] or "",
            }
            _, sim_port = _port_of(settings.carrier_url)
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
        _, api_port = _port_of(settings.api_url)
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
        if network.simulators:
            wait_for_port(settings.carrier_url, "simulators", stack)
        wait_for_port(settings.api_url, "API", stack)
        _banner(settings, ui_port, keys_file(state_dir), network)
        if network.demo and network.demo_orders:
            print(f"submitting {network.demo_orders} demo orders:")
            admin_key = keys["admin"]["key"] or ""
            outcome = asyncio.run(
                run_demo(settings.api_url, network.demo_orders, api_key=admin_key)
            )
            print("demo orders:", ", ".join(f"{k} {v}" for k, v in sorted(outcome.items())))
        print(f"\nchildren's pids in {state_dir / PIDS_FILE}; a crashed one is restarted")
        print("running; press Ctrl-C to stop everything")
        while True:
            stack.supervise()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…")
    except GaveUp as exc:
        print(f"\n{exc}; stopping…", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        stack.stop()
        print("stopped")


def _load_network(engine: Engine, settings: Settings, network: Network) -> str:
    """Seeds or imports the network before any process reads it; says what it did."""
    if network.demo:
        created = seed_demo_network(engine, settings.carrier_url)
        return f"demo network seeded ({created} new stock positions)"
    if network.directory is None:
        return "no network yet: add nodes with the API or `opendom network import DIR`"
    try:
        # Audited as the person who ran `opendom up`, as `opendom network import` would be.
        outcome = import_folder(engine, network.directory, f"cli:{getpass.getuser()}")
    except NetworkFilesRefused as exc:
        for line in exc.refused:
            print(line, file=sys.stderr)
        raise SystemExit(
            f"{network.directory}: nothing imported, {len(exc.refused)} refused line(s); "
            "fix them (`opendom network import --check DIR` checks without a stack)"
        ) from None
    summary = "; ".join(str(file) for file in outcome.files)
    return f"network imported from {network.directory}: {summary}"


def ensure_stack_keys(
    engine: Engine, state_dir: Path, names: list[str]
) -> dict[str, dict[str, str | None]]:
    """The keys of a stack on your own network (a subset of the demo's roles, by name), kept
    in keys.json as the demo keys are: reused on restart while they all still authenticate."""
    path = keys_file(state_dir)
    if path.exists():
        kept = json.loads(path.read_text())
        if set(kept) == set(names):
            with Session(engine) as session:
                if all(authenticate(session, k["key"] or "") for k in kept.values()):
                    return kept
    keys: dict[str, dict[str, str | None]] = {}
    with transaction(engine) as session:
        for name in names:
            role, channel = DEMO_KEYS[name]
            issued = api_clients.issue(
                session, f"opendom up {name}", role, channel=channel, actor=ACTOR
            )
            keys[name] = {"key": issued.key, "signing_secret": issued.signing_secret}
    # Created owner-only: the admin key is never readable by others, not even for a moment.
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(json.dumps(keys, indent=2))
    return keys


def _banner(settings: Settings, ui_port: int, keys: Path, network: Network) -> None:
    ui = f"http://127.0.0.1:{ui_port}"
    print(
        f"\nAPI keys ({', '.join(network.key_names)}) are in {keys}; for curl:\n"
        f"  export OPENDOM_KEY=$(python3 -c \"import json; print(json.load(open('{keys}'))"
        f"['admin']['key'])\")"
    )
    simulators = f"  simulators    {settings.carrier_url}/docs\n" if network.simulators else ""
    print(
        "\nOpenDOM is up\n"
        f"  API docs      {settings.api_url}/docs\n"
        f"  Temporal UI   {ui}/namespaces/{settings.temporal_namespace}/workflows\n"
        f"  orders by status: {ui}/namespaces/{settings.temporal_namespace}/workflows?query="
        "OrderStatus%3D%22COMPLETED%22\n" + simulators
    )
