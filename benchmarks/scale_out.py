"""Scale-out load test: two API processes and two workers on one ledger, hit all at once.

Not a timed test and not a throughput benchmark: it checks that scaling out as a new user would
(a second `worker.py` and a second API beside the first, on one database) keeps every request
answered under a burst. It starts the Temporal dev server, the simulators, two APIs under
uvicorn (separate ports) and two `python worker.py`, all on one ledger (PostgreSQL in a fresh
schema of 127.0.0.1:5432/test, or a SQLite file), seeds the demo network with ample stock and
issues the demo keys. It submits a few orders to read (`--read-targets`), then fires, per API
and all at the same moment, `--submissions` concurrent `POST /v1/orders` and `--reads`
concurrent `GET /v1/orders/{id}`, one connection each. Meanwhile a thread polls `/healthz` of
both APIs every 100 ms. Once every request is answered (or timed out), it waits a few seconds and
counts the ledger's connections "idle in transaction" for longer than that (PostgreSQL; the
processes' connections are told apart by application_name), lets the orders settle, and counts
again.

It passes (exit 0) when every request was answered with a 2xx, or with a 503 / 429 whose body
says why; no request went unanswered (`--timeout`) or got any other 5xx; every /healthz poll was
answered 200 within its timeout; and no connection stayed idle in transaction. When a request
goes unanswered, each API and worker is sent SIGUSR1 first: they run with faulthandler
registered on it, so their logs (kept, path printed) hold every thread's stack at that moment.

Run:

    .venv/bin/python -m benchmarks.scale_out --database postgres
    .venv/bin/python -m benchmarks.scale_out --database sqlite --submissions 300 --reads 300
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from benchmarks import e2e_load
from benchmarks.databases import POSTGRES_URL, fresh_postgres_schema
from ledger.db import create_schema, make_engine
from ledger.tables import OrderView
from stack.demo import SETTLED, sample_order
from stack.demo_data import seed_demo_network
from stack.keys import ensure_demo_keys
from stack.launcher import Stack, temporal_args, uvicorn_args, wait_for_port
from stack.servers import free_port

PG_SCHEMA_PREFIX = "opendom_scale_out"
HEALTH_EVERY_SECONDS = 0.1
HEALTH_TIMEOUT_SECONDS = 5.0
# A transaction idle this long is stuck, not between two statements of a busy request.
IDLE_IN_TRANSACTION_SECONDS = 3
# faulthandler on SIGUSR1, then the program as it would run without it.
_WITH_FAULTHANDLER = (
    "import faulthandler, runpy, signal, sys; "
    "faulthandler.register(signal.SIGUSR1, all_threads=True); "
    "target = sys.argv.pop(1); sys.argv[0] = target; "
    "runpy.run_path(target, run_name='__main__') if target.endswith('.py') "
    "else runpy.run_module(target, run_name='__main__', alter_sys=True)"
)


@dataclass
class Plan:
    database: str = "postgres"
    submissions: int = 300  # concurrent POST /v1/orders, per API
    reads: int = 300  # concurrent GET /v1/orders/{id}, per API
    read_targets: int = 20  # orders submitted first, for the reads to read
    timeout: float = 120  # seconds a request may take before it counts as unanswered
    settle_seconds: float = 300  # for the burst's orders to settle, before the second count
    seed: int = 12
    state_dir: Path | None = None


@dataclass
class Answers:
    """What one API answered to one kind of request."""

    statuses: Counter[int] = field(default_factory=Counter)
    unanswered: list[str] = field(default_factory=list)  # the transport error of each
    unexplained: int = 0  # a 503 / 429 whose body does not say why
    latencies_ms: list[float] = field(default_factory=list)

    reasons: Counter[str] = field(default_factory=Counter)  # of every answer but a 2xx

    def add(self, status: int, body: bytes, ms: float) -> None:
        self.statuses[status] += 1
        self.latencies_ms.append(ms)
        if 200 <= status < 300:
            return
        try:
            said = json.loads(body)
            why = f"{said['error']}: {said['message']}"
        except (ValueError, KeyError, TypeError):
            why = body[:120].decode(errors="replace")
            if status in (429, 503):
                self.unexplained += 1
        # Figures vary between answers ("... after 10.2 s"); the first words name the reason.
        self.reasons[f"{status} {why[:90]}"] += 1

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def other(self) -> int:
        return self.answered - self.ok - self.statuses[503] - self.statuses[429]

    @property
    def failures(self) -> int:
        return len(self.unanswered) + self.other + self.unexplained


@dataclass
class Health:
    """/healthz of one API, polled throughout."""

    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class ApiReport:
    url: str
    submissions: Answers = field(default_factory=Answers)
    reads: Answers = field(default_factory=Answers)
    health: Health = field(default_factory=Health)


@dataclass
class Report:
    plan: Plan
    apis: list[ApiReport]
    burst_seconds: float = 0.0
    idle_in_transaction: list[int] = field(default_factory=list)  # after the burst, after settling
    connections: list[int] = field(default_factory=list)  # the processes' own, at those moments
    settled: Counter[str] = field(default_factory=Counter)  # the burst's orders, by status
    logs: Path | None = None
    exited: list[str] = field(default_factory=list)  # processes that died during the burst

    @property
    def idle_in_transaction_max(self) -> int | None:
        return max(self.idle_in_transaction) if self.idle_in_transaction else None

    @property
    def problems(self) -> list[str]:
        found = list(self.exited)
        for n, api in enumerate(self.apis, 1):
            for kind, answers in (("POST /v1/orders", api.submissions), ("GET", api.reads)):
                if answers.unanswered:
                    found.append(f"API {n} {kind}: {len(answers.unanswered)} unanswered")
                if answers.other:
                    others = {s: c for s, c in answers.statuses.items() if s not in (429, 503)}
                    found.append(f"API {n} {kind}: answers other than 2xx/503/429: {others}")
                if answers.unexplained:
                    found.append(f"API {n} {kind}: {answers.unexplained} 503/429 saying no why")
            if api.health.failures:
                found.append(
                    f"API {n} /healthz: {len(api.health.failures)} failed polls, first: "
                    f"{api.health.failures[0]}"
                )
        if self.idle_in_transaction_max:
            found.append(f"{self.idle_in_transaction_max} connections idle in transaction")
        return found

    def text(self) -> str:
        p = self.plan
        lines = [
            f"scale-out: 2 APIs, 2 workers, ledger on {p.database}; per API {p.submissions} "
            f"concurrent POST /v1/orders + {p.reads} concurrent GET /v1/orders/{{id}}, all at "
            f"once; {os.cpu_count()} cores",
            f"every request answered or given up on within {self.burst_seconds:.1f} s "
            f"(timeout {p.timeout:g} s)",
            "",
            f"{'':<24} {'sent':>5} {'answered':>8} {'2xx':>5} {'503':>5} {'429':>5} "
            f"{'other':>5} {'no answer':>9}   latency p50 / p99 / max",
        ]
        for n, api in enumerate(self.apis, 1):
            for kind, answers, sent in (
                ("POST /v1/orders", api.submissions, p.submissions),
                ("GET /v1/orders/{id}", api.reads, p.reads),
            ):
                lines.append(
                    f"API {n} {kind:<18} {sent:>5} {answers.answered:>8} {answers.ok:>5} "
                    f"{answers.statuses[503]:>5} {answers.statuses[429]:>5} {answers.other:>5} "
                    f"{len(answers.unanswered):>9}   {_latency(answers.latencies_ms)}"
                )
        reasons = Counter[str]()
        for api in self.apis:
            reasons += api.submissions.reasons + api.reads.reasons
        for why, count in reasons.most_common():
            lines.append(f"  {count:>5} x {why}")
        lines.append("")
        for n, api in enumerate(self.apis, 1):
            h = api.health
            lines.append(
                f"API {n} /healthz every {HEALTH_EVERY_SECONDS * 1000:.0f} ms: {len(h.latencies_ms)} "
                f"answered, {len(h.failures)} failed; p99 {h.p(0.99):.0f} ms, "
                f"max {max(h.latencies_ms, default=float('nan')):.0f} ms"
            )
        idle = (
            "n/a (SQLite)"
            if not self.idle_in_transaction
            else " then ".join(
                f"{n} of {total}"
                for n, total in zip(self.idle_in_transaction, self.connections, strict=True)
            )
            + " (after the burst, after settling)"
        )
        lines.append(f"connections idle in transaction > {IDLE_IN_TRANSACTION_SECONDS} s: {idle}")
        settled = ", ".join(f"{s} {n}" for s, n in sorted(self.settled.items()))
        lines.append(f"the burst's orders afterwards: {settled or '-'}")
        problems = self.problems
        lines.append("PASS" if not problems else "FAIL: " + "; ".join(problems))
        if problems and self.logs:
            lines.append(f"logs (stacks dumped on SIGUSR1 at the first timeout): {self.logs}")
        return "\n".join(lines)


def _latency(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{p50:.0f} / {p99:.0f} / {ordered[-1]:.0f} ms"


# ---------------------------------------------------------------- the stack
def _with_faulthandler(args: list[str]) -> list[str]:
    """`python -m X ...` or `python X.py ...` run with faulthandler dumping on SIGUSR1."""
    python, *rest = args
    if rest[0] == "-m":
        rest = rest[1:]
    return [python, "-c", _WITH_FAULTHANDLER, *rest]


@dataclass
class Processes:
    stack: Stack
    api_urls: list[str]
    admin_key: str

    def exited(self) -> list[str]:
        """Children that died: a crash under load is a failure, never restarted into the run
        (nothing here calls the launcher's supervise)."""
        processes = self.stack.processes
        return [f"{n} exited ({p.returncode})" for n, p in processes if p.poll() is not None]

    def dump_stacks(self) -> None:
        for name, process in self.stack.processes:
            if name.startswith(("api", "worker")) and process.poll() is None:
                process.send_signal(signal.SIGUSR1)


def _start(plan: Plan, stack: Stack, engine: Engine) -> Processes:
    settings = stack.settings
    api_urls = [settings.api_url, f"http://127.0.0.1:{free_port()}"]
    stack.start("temporal", temporal_args(settings, stack.state_dir, stack.ui_port))
    create_schema(engine)
    seed_demo_network(engine, settings.carrier_url)
    orders = len(api_urls) * plan.submissions + plan.read_targets
    e2e_load._top_up_stock(engine, units=10 * orders)
    keys = ensure_demo_keys(engine, stack.state_dir)
    stack.secrets = {
        "OPENDOM_SIMULATOR_API_KEY": keys["simulators"]["key"] or "",
        "OPENDOM_SIMULATOR_SIGNING_SECRET": keys["simulators"]["signing_secret"] or "",
    }
    wait_for_port(settings.temporal_address, "Temporal", stack)
    # The simulators call back the first API; both serve the same ledger and engine.
    servers = [
        ("simulators", "simulators.app:create_simulator_app_from_settings", settings.carrier_url)
    ]
    servers += [(f"api-{n}", "api.app:create_app", url) for n, url in enumerate(api_urls, 1)]
    for name, factory, url in servers:
        stack.start(name, _with_faulthandler(uvicorn_args(factory, url)))
    for n in (1, 2):
        stack.start(f"worker-{n}", _with_faulthandler([sys.executable, "worker.py"]))
    for name, _, url in servers:
        wait_for_port(url, name, stack)
    return Processes(stack, api_urls, keys["admin"]["key"] or "")


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables for this run and the processes it starts, restored afterwards (the
    suite's smoke test runs this in the pytest process)."""
    before = {name: os.environ.get(name) for name in [*values, "PGOPTIONS"]}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---------------------------------------------------------------- the load
def _poll_health(url: str, health: Health, stop: threading.Event) -> None:
    """On a thread of its own with its own connection, so the burst's 1,000+ connections on the
    main loop do not delay the polls (the GIL still may, by a few ms)."""
    with httpx.Client(base_url=url, timeout=HEALTH_TIMEOUT_SECONDS) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = client.get("/healthz")
                ms = (time.perf_counter() - started) * 1000
                if response.status_code == 200:
                    health.latencies_ms.append(ms)
                else:
                    health.failures.append(f"{response.status_code} after {ms:.0f} ms")
            except httpx.HTTPError as exc:
                health.failures.append(f"{type(exc).__name__} at {time.strftime('%X')}")
            stop.wait(max(0.0, HEALTH_EVERY_SECONDS - (time.perf_counter() - started)))


async def _request(
    http: httpx.AsyncClient, answers: Answers, method: str, path: str, body: dict | None,
    on_timeout: "asyncio.Event",
) -> None:  # fmt: skip
    started = time.perf_counter()
    try:
        response = await http.request(method, path, json=body)
    except httpx.HTTPError as exc:
        answers.unanswered.append(f"{type(exc).__name__}: {exc}")
        on_timeout.set()
        return
    answers.add(response.status_code, response.content, (time.perf_counter() - started) * 1000)


async def _dump_on_first_timeout(on_timeout: asyncio.Event, processes: Processes) -> None:
    await on_timeout.wait()
    processes.dump_stacks()


async def _submit_read_targets(
    plan: Plan, http: httpx.AsyncClient, engine: Engine, run_id: str
) -> list[str]:
    """Orders for the burst's reads, submitted first and waited for in the read model, so a read
    answers from the ledger (what M10 froze on) and never 404s."""
    rng = random.Random(f"{plan.seed}-targets")
    ids = []
    for i in range(plan.read_targets):
        response = await http.post("/v1/orders", json=sample_order(rng, f"{run_id}t", i))
        response.raise_for_status()
        ids.append(response.json()["order_id"])

    def projected() -> int:
        with Session(engine) as session:
            query = select(func.count()).where(col(OrderView.order_id).in_(ids))
            return session.exec(query).one()

    deadline = time.monotonic() + 120
    while await asyncio.to_thread(projected) < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError("the orders to read never reached the read model")
        await asyncio.sleep(0.25)
    return ids


async def _burst(
    plan: Plan, processes: Processes, report: Report, run_id: str, targets: list[str]
) -> None:
    rng = random.Random(plan.seed)
    headers = {"authorization": f"Bearer {processes.admin_key}"}
    per_api = plan.submissions + plan.reads
    limits = httpx.Limits(max_connections=per_api, max_keepalive_connections=per_api)
    on_timeout = asyncio.Event()
    clients = [
        httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=plan.timeout)
        for url in processes.api_urls
    ]
    calls = []
    for n, (http, api) in enumerate(zip(clients, report.apis, strict=True)):
        for i in range(plan.submissions):
            order = sample_order(rng, f"{run_id}a{n}", i)
            calls.append(_request(http, api.submissions, "POST", "/v1/orders", order, on_timeout))
        for i in range(plan.reads):
            path = f"/v1/orders/{targets[i % len(targets)]}"
            calls.append(_request(http, api.reads, "GET", path, None, on_timeout))
    random.Random(plan.seed).shuffle(calls)  # both kinds interleaved on both APIs from the start
    dumper = asyncio.create_task(_dump_on_first_timeout(on_timeout, processes))
    started = time.perf_counter()
    try:
        await asyncio.gather(*calls)
    finally:
        report.burst_seconds = time.perf_counter() - started
        dumper.cancel()
        for http in clients:
            await http.aclose()


def _count_idle_in_transaction(engine: Engine, application_name: str, report: Report) -> None:
    """The processes' connections (our application_name) idle in a transaction for longer than
    IDLE_IN_TRANSACTION_SECONDS, beside how many of their connections there are at all (a
    count that proves the filter sees them)."""
    query = text(
        "select count(*) filter (where state in ('idle in transaction', "
        "'idle in transaction (aborted)') and now() - state_change > "
        "make_interval(secs => :seconds)), count(*) "
        "from pg_stat_activity where application_name = :name"
    )
    with engine.connect() as connection:
        params = {"name": application_name, "seconds": IDLE_IN_TRANSACTION_SECONDS}
        idle, total = connection.execute(query, params).one()
    report.idle_in_transaction.append(idle)
    report.connections.append(total)


def _burst_statuses(engine: Engine, run_id: str) -> Counter[str]:
    with Session(engine) as session:
        query = (
            select(OrderView.status, func.count())
            .where(col(OrderView.external_id).startswith(f"{run_id}a"))
            .group_by(OrderView.status)
        )
        return Counter({str(s): n for s, n in session.exec(query).all()})


async def _settle(plan: Plan, engine: Engine, run_id: str, expected: int) -> Counter[str]:
    deadline = time.monotonic() + plan.settle_seconds
    while True:
        statuses = await asyncio.to_thread(_burst_statuses, engine, run_id)
        settled = sum(n for s, n in statuses.items() if s in SETTLED)
        if settled >= expected or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(1)


async def _run(plan: Plan, stack: Stack, application_name: str) -> Report:
    engine = make_engine(stack.settings.database_url)
    processes = _start(plan, stack, engine)
    report = Report(plan, [ApiReport(url) for url in processes.api_urls], logs=stack.logs)
    run_id = f"so{int(time.time())}"
    headers = {"authorization": f"Bearer {processes.admin_key}"}
    async with httpx.AsyncClient(
        base_url=processes.api_urls[0], headers=headers, timeout=60
    ) as http:
        targets = await _submit_read_targets(plan, http, engine, run_id)
    stop = threading.Event()
    pollers = [
        threading.Thread(target=_poll_health, args=(api.url, api.health, stop), daemon=True)
        for api in report.apis
    ]
    for poller in pollers:
        poller.start()
    try:
        await _burst(plan, processes, report, run_id, targets)
        report.exited = processes.exited()
        await asyncio.sleep(IDLE_IN_TRANSACTION_SECONDS + 2)
        postgres = plan.database == "postgres"
        if postgres:
            _count_idle_in_transaction(engine, application_name, report)
        accepted = sum(api.submissions.ok for api in report.apis)
        report.settled = await _settle(plan, engine, run_id, accepted)
        if postgres:
            _count_idle_in_transaction(engine, application_name, report)
    finally:
        stop.set()
        for poller in pollers:
            poller.join()
        engine.dispose()
    return report


def run_scale_out(plan: Plan) -> Report:
    state_dir = plan.state_dir or Path(tempfile.mkdtemp(prefix="opendom-scale-out-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    application_name = f"opendom-scale-out-{os.getpid()}"
    schema = f"{PG_SCHEMA_PREFIX}_{os.getpid()}"
    report = None
    # PGAPPNAME reaches every connection of this process and its children (libpq reads it).
    with _environment(PGAPPNAME=application_name):
        if plan.database == "postgres":
            fresh_postgres_schema(schema)  # sets PGOPTIONS, which _environment restores
        settings = e2e_load._settings(e2e_load.Plan(db=plan.database), state_dir)
        stack = Stack(settings, state_dir, ui_port=free_port())
        try:
            report = asyncio.run(_run(plan, stack, application_name))
            return report
        finally:
            stack.stop()
            if plan.database == "postgres":
                _drop_schema(schema)
            if plan.state_dir is None and report is not None and not report.problems:
                shutil.rmtree(state_dir, ignore_errors=True)


def _drop_schema(schema: str) -> None:
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f"drop schema if exists {schema} cascade"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("postgres", "sqlite"), default=Plan.database)
    parser.add_argument("--submissions", type=int, default=Plan.submissions, help="per API")
    parser.add_argument("--reads", type=int, default=Plan.reads, help="per API")
    parser.add_argument("--read-targets", type=int, default=Plan.read_targets)
    parser.add_argument("--timeout", type=float, default=Plan.timeout)
    parser.add_argument("--settle-seconds", type=float, default=Plan.settle_seconds)
    parser.add_argument("--state-dir", type=Path, help="keep logs and databases here")
    args = parser.parse_args()
    plan = Plan(
        database=args.database, submissions=args.submissions, reads=args.reads,
        read_targets=args.read_targets, timeout=args.timeout,
        settle_seconds=args.settle_seconds, state_dir=args.state_dir,
    )  # fmt: skip
    report = run_scale_out(plan)
    print(report.text())
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
