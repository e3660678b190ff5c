"""End-to-end load benchmark: orders per second through the API, the order workflows and the
node / carrier simulators at zero simulated latency, beside the engine's own ceiling measured in
the same run on the same Temporal dev server.

Everything runs as `make run` runs it, each in its own process: the Temporal dev server (a fresh
SQLite file in a temporary folder, WAL, the search attributes registered at start),
`python worker.py` (the production worker, unchanged), the API and the simulators under uvicorn
(access log off). The demo network is seeded and every stock position topped up so no order
backorders.

Per round:

1. Orders: `--orders` sample orders (`stack.demo.sample_order`: 1-3 lines, 15 % of direct orders
   picked up in a store) POSTed to `/v1/orders` by `--concurrency` submitters as fast as the API
   answers. Per order: submit time (just before the POST), reservation time (the `allocated`
   entry of the order's timeline in the read model: when the workflow applied the reservation)
   and completion time (the workflow's close event). Orders/s = completed orders / (last
   completion - first submit).
2. Ceiling: as many `BareOrderWorkflow`s (benchmarks/bare_workflow.py) started straight on the
   engine by as many concurrent starters, each standing for one of the orders just measured: as
   many activities as that order executed (counted from its history, local ones included), every
   one a regular no-op activity, and as many signals - a bare workflow "with the same number of
   activities and no business logic" - on a worker with the production worker's settings.
   Orders/s and start -> completion the same way. When the orders ran some activities as local
   activities (the ledger and read-model calls do), a second, like-for-like ceiling keeps the
   same regular / local split; it is printed beside the first, for what it says about the cost
   of the business logic itself.

Each phase also prints the CPU each process spent per order (Linux /proc): on a shared 2-core
machine that split is steadier than the wall-clock figures.

Rounds (default 3) alternate which phase goes first - an odd round's ceiling runs after its
orders, on a server whose database already holds their histories; an even round's runs first,
with the previous round's order shapes - and the summary takes medians. A warm-up of 20 orders
and their bare workflows runs first, unmeasured.

Run:

    .venv/bin/python -m benchmarks.e2e_load                      # 300 orders, SQLite ledger
    .venv/bin/python -m benchmarks.e2e_load --db postgres        # ledger on 127.0.0.1:5432/test
"""

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from benchmarks.bare_workflow import BareName, BareShape
from benchmarks.databases import POSTGRES_URL, fresh_postgres_schema
from config import Settings
from ledger.db import create_schema, make_engine, transaction
from ledger.stock import adjust_on_hand
from ledger.tables import OrderView, StockPosition
from stack.demo import sample_order
from stack.demo_data import seed_demo_network
from stack.keys import ensure_demo_keys
from stack.launcher import Stack, temporal_args, uvicorn_args, wait_for_port
from stack.servers import free_port

PG_SCHEMA = "opendom_e2e"
BARE_TASK_QUEUE = "bare-ceiling"
GOAL = 0.70
SUBMIT_ATTEMPTS = 5


@dataclass
class Plan:
    orders: int = 300
    concurrency: int = 32
    rounds: int = 3
    warmup: int = 20  # orders and bare workflows run first, unmeasured (imports, caches, JIT)
    db: str = "sqlite"
    seed: int = 5
    sandbox: bool = False  # Temporal's workflow sandbox, for both workers (off in production)
    settle_seconds: float = 600
    state_dir: Path | None = None


@dataclass
class Sample:
    workflow_id: str
    submitted: float  # epoch seconds, just before the POST / start call
    reserved: float | None = None
    completed: float | None = None


@dataclass
class Phase:
    name: str
    samples: list[Sample]
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # per process, this phase
    submit_retries: int = 0  # submissions answered 5xx and sent again

    @property
    def completed(self) -> list[Sample]:
        return [s for s in self.samples if s.completed is not None]

    @property
    def seconds(self) -> float:
        done = self.completed
        if not done:
            return float("nan")
        return max(s.completed or 0 for s in done) - min(s.submitted for s in self.samples)

    @property
    def per_second(self) -> float:
        return len(self.completed) / self.seconds

    def latencies_ms(self, to: str) -> list[float]:
        values = [getattr(s, to) for s in self.samples]
        return [(v - s.submitted) * 1000 for v, s in zip(values, self.samples, strict=True) if v]

    def row(self) -> str:
        text = (
            f"{self.name:<30} {self.per_second:7.1f} orders/s  {len(self.completed)}/"
            f"{len(self.samples)} completed in {self.seconds:6.1f} s"
        )
        if self.submit_retries:
            text += f" ({self.submit_retries} submissions answered 5xx and sent again)"
        if any(s.reserved for s in self.samples):
            text += f"\n{'':<32}submit -> reservation {_p(self.latencies_ms('reserved'))}"
        text += f"\n{'':<32}submit -> completion  {_p(self.latencies_ms('completed'))}"
        if self.cpu_seconds:
            per_order = ", ".join(
                f"{name} {seconds / len(self.samples) * 1000:.0f}"
                for name, seconds in self.cpu_seconds.items()
                if seconds >= 0.005 * len(self.samples)
            )
            text += f"\n{'':<32}CPU ms per order: {per_order}"
        return text


@dataclass
class Round:
    orders: Phase
    ceiling: Phase
    shapes: list[BareShape]
    like_for_like: Phase | None = None

    @property
    def ratio(self) -> float:
        return self.orders.per_second / self.ceiling.per_second


@dataclass
class Report:
    plan: Plan
    rounds: list[Round] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(r.ratio for r in self.rounds)

    def text(self) -> str:
        p = self.plan
        lines = [
            f"end-to-end load: {p.orders} orders per phase, {p.concurrency} concurrent "
            f"submitters, ledger on {p.db}, simulators at zero latency, {os.cpu_count()} cores, "
            f"workflow sandbox {'on' if p.sandbox else 'off'} in both workers"
        ]
        for n, r in enumerate(self.rounds, 1):
            shape = _mean_shape(r.shapes)
            lines += [
                f"\nround {n}: an order did on average {shape} in the engine",
                "  " + r.ceiling.row().replace("\n", "\n  "),
                "  " + r.orders.row().replace("\n", "\n  "),
                f"  orders/s = {r.ratio:.0%} of the ceiling (goal >= {GOAL:.0%})",
            ]
            if r.like_for_like is not None:
                lines += [
                    "  " + r.like_for_like.row().replace("\n", "\n  "),
                    f"  orders/s = {r.orders.per_second / r.like_for_like.per_second:.0%} of the "
                    "like-for-like ceiling (the same regular / local split as the orders)",
                ]
        if len(self.rounds) > 1:
            lines.append(
                f"\nmedian over {len(self.rounds)} rounds: orders "
                f"{statistics.median(r.orders.per_second for r in self.rounds):.1f}/s, ceiling "
                f"{statistics.median(r.ceiling.per_second for r in self.rounds):.1f}/s, "
                f"ratio {self.ratio:.0%}"
            )
        return "\n".join(lines)


def _p(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {at(0.5):7.0f} ms   p99 {at(0.99):7.0f} ms"


def _mean_shape(shapes: list[BareShape]) -> str:
    n = len(shapes) or 1
    return (
        f"{sum(s.activities for s in shapes) / n:.1f} activities, "
        f"{sum(s.local_activities for s in shapes) / n:.1f} local activities, "
        f"{sum(s.signals for s in shapes) / n:.1f} signals"
    )


# ---------------------------------------------------------------- the stack
def _settings(plan: Plan, state_dir: Path) -> Settings:
    sqlite_url = f"sqlite:///{state_dir}/opendom.db"
    database_url = POSTGRES_URL if plan.db == "postgres" else sqlite_url
    return Settings(
        database_url=database_url,
        temporal_address=f"127.0.0.1:{free_port()}",
        api_url=f"http://127.0.0.1:{free_port()}",
        carrier_url=f"http://127.0.0.1:{free_port()}",
        simulator_latency_seconds=0,
        workflow_sandbox=plan.sandbox,
    )


def _top_up_stock(engine: Engine, units: int) -> None:
    """Every demo position gets `units` more on hand, so no order waits backordered."""
    with transaction(engine) as session:
        positions = session.exec(select(StockPosition.node_id, StockPosition.sku)).all()
        for node_id, sku in positions:
            adjust_on_hand(session, node_id, sku, units, cause="e2e load benchmark")


async def _start_stack(plan: Plan, stack: Stack, engine: Engine) -> str:
    """Starts every process; returns the admin API key."""
    settings = stack.settings
    stack.start("temporal", temporal_args(settings, stack.state_dir, stack.ui_port))
    create_schema(engine)
    seed_demo_network(engine, settings.carrier_url)
    _top_up_stock(engine, units=10 * (plan.orders * plan.rounds + plan.warmup))
    keys = ensure_demo_keys(engine, stack.state_dir)
    stack.secrets = {
        "OPENDOM_SIMULATOR_API_KEY": keys["simulators"]["key"] or "",
        "OPENDOM_SIMULATOR_SIGNING_SECRET": keys["simulators"]["signing_secret"] or "",
    }
    wait_for_port(settings.temporal_address, "Temporal", stack)
    stack.start("simulators", uvicorn_args("simulators.app:create_simulator_app_from_settings",
                                       settings.carrier_url))  # fmt: skip
    stack.start("api", uvicorn_args("api.app:create_app", settings.api_url))
    stack.start("worker", [sys.executable, "worker.py"])
    stack.start(
        "bare-worker",
        [sys.executable, "-m", "benchmarks.bare_workflow", "--task-queue", BARE_TASK_QUEUE],
    )
    wait_for_port(settings.carrier_url, "simulators", stack)
    wait_for_port(settings.api_url, "API", stack)
    return keys["admin"]["key"] or ""


async def _connect(address: str, stack: Stack) -> Client:
    deadline = time.monotonic() + 60
    while True:
        stack.check_alive()
        try:
            return await Client.connect(address, data_converter=pydantic_data_converter)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def _cpu_seconds(stack: Stack) -> dict[str, float]:
    """User + system CPU of each process so far (Linux /proc; empty elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    pids = [("benchmark", os.getpid())] + [(n, p.pid) for n, p in stack.processes]
    used = {}
    for name, pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[name] = (int(fields[11]) + int(fields[12])) / ticks
    return used


class _CpuMeter:
    """CPU each process spent between start() and stop()."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = _cpu_seconds(self.stack)

    def stop(self) -> dict[str, float]:
        after = _cpu_seconds(self.stack)
        return {n: after[n] - self.before.get(n, 0.0) for n in after}


# ---------------------------------------------------------------- driving load
async def _closed_loop(
    count: int, concurrency: int, call: Callable[[int], Awaitable[str]]
) -> list[Sample]:
    """`concurrency` callers, each taking the next index as soon as its last call returned."""
    samples: list[Sample | None] = [None] * count
    next_index = iter(range(count))

    async def caller() -> None:
        for i in next_index:
            submitted = time.time()
            samples[i] = Sample(await call(i), submitted)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return [s for s in samples if s is not None]


async def _until(
    done: Callable[[], Awaitable[int]], expected: int, seconds: float, stack: Stack
) -> None:
    deadline = time.monotonic() + seconds
    while (finished := await done()) < expected:
        stack.check_alive()
        if time.monotonic() > deadline:
            print(f"  only {finished}/{expected} finished within {seconds:g} s", file=sys.stderr)
            return
        await asyncio.sleep(0.25)


async def _bounded(concurrency: int, calls: list[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


async def _run_orders(
    plan: Plan, name: str, count: int, http: httpx.AsyncClient, client: Client, engine: Engine,
    stack: Stack, run_id: str,
) -> tuple[Phase, list[BareShape]]:  # fmt: skip
    rng = random.Random(f"{plan.seed}-{run_id}")
    payloads = [sample_order(rng, run_id, i) for i in range(count)]

    async def submit(i: int) -> str:
        # As a channel does: a 5xx is retried with the same external id (idempotent), counted.
        for _ in range(SUBMIT_ATTEMPTS - 1):
            try:
                response = await http.post("/v1/orders", json=payloads[i])
            except httpx.TransportError:
                retried.append(0)
                continue
            if response.status_code < 500:
                break
            retried.append(response.status_code)
        else:
            response = await http.post("/v1/orders", json=payloads[i])
        response.raise_for_status()
        return response.json()["order_id"]

    retried: list[int] = []

    meter = _CpuMeter(stack)
    meter.start()
    samples = await _closed_loop(count, plan.concurrency, submit)

    def completed_in_read_model() -> int:
        with Session(engine) as session:
            query = select(func.count()).where(
                col(OrderView.external_id).startswith(f"{run_id}-"),
                col(OrderView.status) == "COMPLETED",
            )
            return session.exec(query).one()

    async def completed() -> int:
        return await asyncio.to_thread(completed_in_read_model)

    await _until(completed, count, plan.settle_seconds, stack)
    cpu = meter.stop()
    shapes = await _from_histories(client, samples)
    with Session(engine) as session:
        rows = session.exec(
            select(OrderView).where(col(OrderView.external_id).startswith(f"{run_id}-"))
        ).all()
        allocated = {row.order_id: _first_allocation(row.document) for row in rows}
    for sample in samples:
        sample.reserved = allocated.get(sample.workflow_id)
    return Phase(name, samples, cpu, submit_retries=len(retried)), shapes


def _first_allocation(document: dict) -> float | None:
    from datetime import datetime

    for entry in document.get("timeline", []):
        if entry["event"] == "allocated":
            return datetime.fromisoformat(entry["at"]).timestamp()
    return None


async def _from_histories(client: Client, samples: list[Sample]) -> list[BareShape]:
    """Each order's engine work (activities, local activities, signals) and close time."""
    shapes: dict[str, BareShape] = {}

    async def read(sample: Sample) -> None:
        for _ in range(40):  # the read model says COMPLETED a moment before the workflow closes
            history = await client.get_workflow_handle(sample.workflow_id).fetch_history()
            last = history.events[-1]
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                sample.completed = last.event_time.seconds + last.event_time.nanos / 1e9
                break
            await asyncio.sleep(0.25)
        kinds = [e.event_type for e in history.events]
        # The marker Temporal's SDKs record for a local activity's result.
        shapes[sample.workflow_id] = BareShape(
            activities=kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
            local_activities=sum(
                1
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
            ),
            signals=kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
        )

    await _bounded(8, [lambda s=s: read(s) for s in samples])  # type: ignore[misc]
    return [shapes[s.workflow_id] for s in samples]


async def _run_ceiling(
    plan: Plan, name: str, shapes: list[BareShape], client: Client, stack: Stack, run_id: str,
    already_completed: int,
) -> Phase:  # fmt: skip
    async def start(i: int) -> str:
        workflow_id = f"bare-{run_id}-{i:05d}"
        await client.start_workflow(
            BareName.WORKFLOW, shapes[i], id=workflow_id, task_queue=BARE_TASK_QUEUE
        )
        return workflow_id

    meter = _CpuMeter(stack)
    meter.start()
    samples = await _closed_loop(len(shapes), plan.concurrency, start)

    async def completed() -> int:
        query = f"WorkflowType = '{BareName.WORKFLOW}' AND ExecutionStatus = 'Completed'"
        return (await client.count_workflows(query)).count - already_completed

    await _until(completed, len(shapes), plan.settle_seconds, stack)
    cpu = meter.stop()

    async def close_time(sample: Sample) -> None:
        description = await client.get_workflow_handle(sample.workflow_id).describe()
        if description.close_time is not None:
            sample.completed = description.close_time.timestamp()

    await _bounded(8, [lambda s=s: close_time(s) for s in samples])  # type: ignore[misc]
    return Phase(name, samples, cpu)


CEILING = "engine ceiling (bare workflow)"
LIKE_FOR_LIKE = "like-for-like ceiling"


def _ceiling_shapes(shapes: list[BareShape]) -> dict[str, list[BareShape]]:
    """The ceiling: as many activities as the order executed, every one a regular activity (a
    bare workflow "with the same number of activities"), and its signals. When the orders ran
    some as local activities, also a like-for-like ceiling with the same split."""
    ceilings = {
        CEILING: [
            BareShape(activities=s.activities + s.local_activities, signals=s.signals)
            for s in shapes
        ]
    }
    if any(s.local_activities for s in shapes):
        ceilings[LIKE_FOR_LIKE] = shapes
    return ceilings


async def _run_ceilings(
    plan: Plan, shapes: list[BareShape], client: Client, stack: Stack, run_id: str,
    bare_done: list[int],
) -> dict[str, Phase]:  # fmt: skip
    """Runs every ceiling for these order shapes; `bare_done` counts bare workflows so far."""
    ceilings = {}
    for name, bare in _ceiling_shapes(shapes).items():
        tag = f"{run_id}{'l' if name == LIKE_FOR_LIKE else 'c'}"
        ceilings[name] = await _run_ceiling(plan, name, bare, client, stack, tag, bare_done[0])
        bare_done[0] += len(bare)
    return ceilings


async def _run(plan: Plan, stack: Stack) -> Report:
    engine = make_engine(stack.settings.database_url)
    admin_key = await _start_stack(plan, stack, engine)
    client = await _connect(stack.settings.temporal_address, stack)
    report = Report(plan)
    headers = {"authorization": f"Bearer {admin_key}"}
    limits = httpx.Limits(
        max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency
    )
    bare_done = [0]
    tag = f"e2e{int(time.time())}"
    async with httpx.AsyncClient(
        base_url=stack.settings.api_url, timeout=60, headers=headers, limits=limits
    ) as http:

        async def orders(name: str, count: int, run_id: str) -> tuple[Phase, list[BareShape]]:
            return await _run_orders(plan, name, count, http, client, engine, stack, run_id)

        if plan.warmup:
            _, shapes = await orders("warm-up", plan.warmup, f"{tag}w")
            await _run_ceilings(plan, shapes, client, stack, f"{tag}w", bare_done)
            print(f"warmed up with {plan.warmup} orders and their bare workflows", flush=True)
        for n in range(plan.rounds):
            run_id = f"{tag}r{n}"
            # Odd rounds measure the ceiling first, with the previous round's order shapes (the
            # same seeded order mix), so neither phase always runs on the fuller server.
            ceilings = {}
            if n % 2 == 1:
                previous = report.rounds[-1].shapes
                ceilings = await _run_ceilings(plan, previous, client, stack, run_id, bare_done)
            measured, shapes = await orders("orders through API + workflows", plan.orders, run_id)
            if not ceilings:
                ceilings = await _run_ceilings(plan, shapes, client, stack, run_id, bare_done)
            report.rounds.append(
                Round(measured, ceilings[CEILING], shapes, ceilings.get(LIKE_FOR_LIKE))
            )
            r = report.rounds[-1]
            print(f"round {n + 1}: {measured.per_second:.1f} orders/s, ceiling "
                  f"{r.ceiling.per_second:.1f}/s, {r.ratio:.0%}", flush=True)  # fmt: skip
    engine.dispose()
    return report


def run_benchmark(plan: Plan) -> Report:
    state_dir = plan.state_dir or Path(tempfile.mkdtemp(prefix="opendom-e2e-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    if plan.db == "postgres":
        fresh_postgres_schema(PG_SCHEMA)
    stack = Stack(_settings(plan, state_dir), state_dir, ui_port=free_port())
    try:
        return asyncio.run(_run(plan, stack))
    finally:
        stack.stop()
        if plan.state_dir is None:  # a temporary stack: its databases and logs go with it
            shutil.rmtree(state_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=Plan.orders)
    parser.add_argument("--concurrency", type=int, default=Plan.concurrency)
    parser.add_argument("--rounds", type=int, default=Plan.rounds)
    parser.add_argument("--warmup", type=int, default=Plan.warmup)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--state-dir", type=Path, help="keep logs and databases here")
    parser.add_argument(
        "--sandbox", action="store_true", help="run both workers' workflows in the sandbox"
    )
    args = parser.parse_args()
    plan = Plan(
        orders=args.orders, concurrency=args.concurrency, rounds=args.rounds, warmup=args.warmup,
        db=args.db, state_dir=args.state_dir, sandbox=args.sandbox,
    )  # fmt: skip
    report = run_benchmark(plan)
    print()
    print(report.text())


if __name__ == "__main__":
    main()
