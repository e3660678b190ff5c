"""Run orders through the whole stack (Temporal dev server on its SQLite file, worker, API,
simulators, all separate processes as in production) while killing the worker, restarting the
engine and letting the node and carrier systems misbehave; then check the invariants.

    .venv/bin/python -m chaos                      # the small default the test suite also runs
    .venv/bin/python -m chaos --orders 500 --rate 5   # the run in benchmarks/README.md
"""

import asyncio
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from chaos.invariants import SETTLED, Invariant, check_invariants
from config import Settings
from ledger.db import create_schema, make_engine
from ledger.tables import OrderView
from stack.demo import sample_order
from stack.demo_data import seed_demo_network
from stack.keys import ensure_demo_keys
from stack.launcher import Stack, temporal_args, uvicorn_args, wait_for_port
from stack.servers import free_port

# How a fault rate splits over the kinds of connector fault (per call or callback).
FAULT_MIX = {"http_5xx": 0.4, "timeout": 0.2, "rejection": 0.2, "duplicate_callback": 0.2}


@dataclass
class ChaosPlan:
    orders: int = 30
    rate: float = 3.0  # orders submitted per second
    worker_kills: int = 3
    server_restarts: int = 1
    fault_rate: float = 0.10
    cancel_share: float = 0.05  # orders a support agent cancels soon after submission
    seed: int = 11
    settle_seconds: float = 600
    sla_scale: float = 0.02  # accept SLAs of ~20-70 s: long enough to outlive a restart
    state_dir: Path | None = None


@dataclass
class ChaosReport:
    plan: ChaosPlan
    invariants: list[Invariant]
    seconds_submitting: float
    seconds_to_settle: float
    submit_retries: int
    cancels: Counter[str]
    events: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(i.holds for i in self.invariants)

    def text(self) -> str:
        p = self.plan
        lines = [
            f"chaos run: {p.orders} orders at {p.rate:g}/s, {p.worker_kills} worker kills, "
            f"{p.server_restarts} Temporal restarts, {p.fault_rate:.0%} connector faults",
            *(f"  {e}" for e in self.events),
            f"  submitted in {self.seconds_submitting:.1f} s ({self.submit_retries} submissions "
            f"retried by the channel); every order settled {self.seconds_to_settle:.1f} s after the "
            "last submission",
            "  faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())),
            "  support cancels: " + ", ".join(f"{k} {v}" for k, v in sorted(self.cancels.items())),
            "invariants:",
            *(i.line() for i in self.invariants),
            "ALL INVARIANTS HOLD" if self.ok else "INVARIANTS BROKEN",
        ]
        return "\n".join(lines)


def run_chaos(plan: ChaosPlan) -> ChaosReport:
    state_dir = plan.state_dir or Path(tempfile.mkdtemp(prefix="opendom-chaos-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    settings = _settings(plan, state_dir)
    stack = Stack(settings, state_dir, ui_port=free_port())
    try:
        return asyncio.run(_run(plan, settings, stack))
    finally:
        stack.stop()


def _settings(plan: ChaosPlan, state_dir: Path) -> Settings:
    faults = {k: plan.fault_rate * share for k, share in FAULT_MIX.items()}
    return Settings(
        database_url=f"sqlite:///{state_dir}/opendom.db",
        temporal_address=f"127.0.0.1:{free_port()}",
        api_url=f"http://127.0.0.1:{free_port()}",
        carrier_url=f"http://127.0.0.1:{free_port()}",
        sla_scale=plan.sla_scale,
        simulator_latency_seconds=0.05,
        simulator_failure_rate=faults["http_5xx"],
        simulator_timeout_rate=faults["timeout"],
        simulator_reject_rate=faults["rejection"],
        simulator_duplicate_rate=faults["duplicate_callback"],
        simulator_seed=plan.seed,
        housekeeping_every_seconds=5,
    )


class _Processes:
    """The stack's processes, with the ones chaos needs to kill and bring back."""

    def __init__(self, settings: Settings, stack: Stack) -> None:
        self.settings = settings
        self.stack = stack
        python = sys.executable
        self.args = {
            "temporal": temporal_args(settings, stack.state_dir, stack.ui_port),
            "simulators": uvicorn_args("simulators.app:create_simulator_app_from_settings", settings.carrier_url),
            "api": uvicorn_args("api.app:create_app", settings.api_url),
            "worker": [python, "worker.py"],
        }  # fmt: skip

    def start(self, name: str) -> None:
        self.stack.start(name, self.args[name])

    def kill(self, name: str) -> None:
        """SIGKILL: no graceful shutdown, as when a machine dies."""
        for entry in list(self.stack.processes):
            if entry[0] == name:
                entry[1].send_signal(signal.SIGKILL)
                entry[1].wait()
                self.stack.processes.remove(entry)


async def _run(plan: ChaosPlan, settings: Settings, stack: Stack) -> ChaosReport:
    procs = _Processes(settings, stack)
    procs.start("temporal")
    wait_for_port(settings.temporal_address, "Temporal", stack)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    seed_demo_network(engine, settings.carrier_url)
    keys = ensure_demo_keys(engine, stack.state_dir)
    stack.secrets = {
        "OPENDOM_SIMULATOR_API_KEY": keys["simulators"]["key"] or "",
        "OPENDOM_SIMULATOR_SIGNING_SECRET": keys["simulators"]["signing_secret"] or "",
    }
    for name in ("simulators", "api", "worker"):
        procs.start(name)
    wait_for_port(settings.carrier_url, "simulators", stack)
    wait_for_port(settings.api_url, "API", stack)

    rng = random.Random(plan.seed)
    payloads = [sample_order(rng, f"chaos{plan.seed}", i) for i in range(plan.orders)]
    events: list[str] = []
    headers = {"authorization": f"Bearer {keys['admin']['key']}"}
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=30, headers=headers) as http:
        channel = _Channel(http, rng, plan.cancel_share)
        started = time.monotonic()
        submitting = asyncio.create_task(channel.submit_all(payloads, plan.rate))
        await _cause_chaos(plan, procs, settings, stack, events, started)
        order_ids = await submitting
        submitted = time.monotonic()
        await channel.cancels_done()
        await _until_settled(engine, order_ids, plan.settle_seconds)
        settled_after = time.monotonic() - submitted
        sim_stats = (await http.get(f"{settings.carrier_url}/sim/stats")).json()
    invariants = check_invariants(engine, order_ids, sim_stats)
    engine.dispose()
    counts = sim_stats["counts"]
    faults = {
        "HTTP 503": counts.get("injected_failures", 0),
        "timeouts": counts.get("injected_timeouts", 0),
        "rejections": counts.get("callback_rejected", 0),
        "duplicate callbacks": counts.get("duplicate_callbacks", 0),
    }
    return ChaosReport(
        plan, invariants, submitted - started, settled_after, channel.retries,
        channel.cancel_outcomes, events, faults,
    )  # fmt: skip


async def _cause_chaos(
    plan: ChaosPlan,
    procs: _Processes,
    settings: Settings,
    stack: Stack,
    events: list[str],
    started: float,
) -> None:
    """Spread the kills over the submission window (the last one just after it, while orders are
    being fulfilled); the engine restarts in between."""
    window = plan.orders / plan.rate
    moments = [(window * (i + 1) / plan.worker_kills, "worker") for i in range(plan.worker_kills)]
    moments += [
        (window * (i + 0.6) / max(plan.server_restarts, 1), "temporal")
        for i in range(plan.server_restarts)
    ]
    for at, name in sorted(moments):
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        down = time.monotonic()
        procs.kill(name)
        await asyncio.sleep(1.0)
        procs.start(name)
        address = settings.temporal_address if name == "temporal" else None
        if address:
            await asyncio.to_thread(wait_for_port, address, "Temporal", stack)
        what = (
            "killed the worker (SIGKILL)"
            if name == "worker"
            else "killed the Temporal dev server (SIGKILL)"
        )
        events.append(
            f"t+{down - started:5.1f} s {what}; back after {time.monotonic() - down:.1f} s"
        )


class _Channel:
    """A sales channel that retries a submission until it is acknowledged (same external id:
    idempotent), and a support agent cancelling a few orders."""

    def __init__(self, http: httpx.AsyncClient, rng: random.Random, cancel_share: float) -> None:
        self.http = http
        self.rng = rng
        self.cancel_share = cancel_share
        self.retries = 0
        self.cancel_outcomes: Counter[str] = Counter()
        self._cancels: list[asyncio.Task[None]] = []

    async def submit_all(self, payloads: list[dict], rate: float) -> list[str]:
        start = time.monotonic()

        async def one(i: int, payload: dict) -> str:
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            order_id = await self._submit(payload)
            if self.rng.random() < self.cancel_share:
                self._cancels.append(asyncio.create_task(self._cancel(order_id)))
            return order_id

        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(payloads))))

    async def _submit(self, payload: dict) -> str:
        for attempt in range(600):
            try:
                response = await self.http.post("/v1/orders", json=payload)
                if response.status_code in (200, 201):
                    return response.json()["order_id"]
                if response.status_code < 500 and response.status_code != 429:
                    raise RuntimeError(f"order refused: {response.status_code} {response.text}")
            except httpx.TransportError:
                pass
            self.retries += 1
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        raise RuntimeError(f"order {payload['external_id']} was never acknowledged")

    async def _cancel(self, order_id: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.1, 3.0))
        for attempt in range(120):
            try:
                response = await self.http.post(
                    f"/v1/orders/{order_id}/cancel", json={"reason": "customer changed their mind"}
                )
                if response.status_code < 500:
                    outcome = "cancelled" if response.status_code == 200 else "refused"
                    self.cancel_outcomes[f"{outcome} ({response.status_code})"] += 1
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        self.cancel_outcomes["never answered"] += 1

    async def cancels_done(self) -> None:
        await asyncio.gather(*self._cancels)


async def _until_settled(engine: Engine, order_ids: list[str], seconds: float) -> None:
    """Until every order is settled in the read model, or the deadline (the invariants then
    name the ones that are not)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with Session(engine) as session:
            statuses = session.exec(
                select(OrderView.status).where(col(OrderView.order_id).in_(order_ids))
            ).all()
        if len(statuses) == len(order_ids) and all(s in SETTLED for s in statuses):
            return
        await asyncio.sleep(0.5)
