"""Network import benchmark: a retailer's whole network from files, at retail scale.

Generates (seeded) 1,000 nodes x 50,000 SKUs with 5,000,000 stock positions (each node holds
5,000 of the SKUs) as network files (docs/network-files.md), imports them with `opendom network
import`'s service in a child process (so its peak memory is its own), imports them again (nothing
changes), then starts the API on that database, waits for /readyz and answers a few hundred
checkout checks one at a time.

Reports: the import time per file and in total, the re-import time, the time to API ready,
checkout check latency p50 / p99, and the peak memory (VmHWM) of the import process and of the
API process.

Run:

    .venv/bin/python -m benchmarks.network_import_bench                        # SQLite, full
    .venv/bin/python -m benchmarks.network_import_bench --database postgres    # PostgreSQL
    .venv/bin/python -m benchmarks.network_import_bench --scale 0.1            # 500,000 positions

`--scale s` multiplies the nodes and SKUs by s (each node still holds up to 5,000 SKUs).
PostgreSQL runs in a fresh schema of postgresql://127.0.0.1:5432/test, dropped afterwards.
"""

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from benchmarks.checkout_bench import start_api, wait_ready
from benchmarks.databases import POSTGRES_URL, fresh_postgres_schema
from benchmarks.loadgen import http_request
from ledger.db import create_schema, make_engine, transaction
from security.keys import issue_key
from security.roles import Role
from stack.servers import free_port

SCHEMA = "opendom_network_bench"
CHANNEL = "web"
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Scale:
    nodes: int
    skus: int
    per_node: int

    @classmethod
    def of(cls, factor: float) -> "Scale":
        nodes = max(2, round(1000 * factor))
        skus = max(10, round(50_000 * factor))
        return cls(nodes, skus, min(5000, skus))

    @property
    def positions(self) -> int:
        return self.nodes * self.per_node


def node_id(n: int) -> str:
    return f"N{n:04d}"


def sku_id(s: int) -> str:
    return f"SKU{s:06d}"


def generate(folder: Path, scale: Scale, seed: int = 1) -> None:
    """The five network files, seeded: warehouses and stores across the US."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "carriers.csv").open("w", newline="") as out:
        out.write("carrier,service,name,transit_bands,cutoff_time\n")
        out.write("UPS,ground,UPS Ground,300:1|900:2|1800:3|1000000000:5,17:00\n")
        out.write("UPS,next-day,UPS Next Day Air,1000000000:1,15:00\n")
    with (folder / "nodes.csv").open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["node_id", "name", "node_type", "lat", "lon", "can_pickup",
                         "daily_capacity", "connector_kind", "timezone"])  # fmt: skip
        for n in range(scale.nodes):
            store = n >= scale.nodes // 20
            writer.writerow([
                node_id(n), f"{'Store' if store else 'Warehouse'} {n}",
                "store" if store else "warehouse",
                round(rng.uniform(30, 47), 5), round(rng.uniform(-120, -75), 5),
                "true" if store else "false", 200 if store else 5000, "simulator",
                "America/New_York",
            ])  # fmt: skip
    with (folder / "skus.csv").open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["sku", "name", "unit_price", "weight_kg"])
        for s in range(scale.skus):
            writer.writerow([sku_id(s), f"Item {s}", rng.choice((9.5, 19, 49, 99)), 0.4])
    with (folder / "channels.csv").open("w", newline="") as out:
        out.write("channel,name,channel_type,default_scenario\n")
        out.write(f"{CHANNEL},Web shop,dtc,fastest\n")
    with (folder / "stock.csv").open("w", newline="") as out:
        out.write("node_id,sku,on_hand,safety_override\n")
        units = (0, 1, 3, 10, 50)
        for n in range(scale.nodes):
            held = rng.sample(range(scale.skus), scale.per_node)
            node = node_id(n)
            out.write("".join(f"{node},{sku_id(s)},{rng.choice(units)},\n" for s in sorted(held)))


# ----------------------------------------------------------------------------- child: import
def vm_hwm_mib(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child_import(folder: Path) -> None:
    """In the child process: import the folder, print one JSON line with the figures."""
    from config import load_settings
    from services.network_files import import_folder

    engine = make_engine(load_settings().database_url)
    create_schema(engine)
    started = time.perf_counter()
    outcome = import_folder(engine, folder, "cli:benchmark")
    total = time.perf_counter() - started
    print(json.dumps({
        "files": [{"name": f.name, "created": f.created, "updated": f.updated,
                   "unchanged": f.unchanged, "seconds": f.seconds} for f in outcome.files],
        "total": total, "changed": outcome.changed, "vm_hwm_mib": vm_hwm_mib(),
    }))  # fmt: skip


def run_import(folder: Path, url: str) -> dict:
    env = {**os.environ, "DATABASE_URL": url}  # PGOPTIONS (the schema) is inherited
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.network_import_bench", "--child-import", str(folder)],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"import failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the API
def carts(scale: Scale, key: str, count: int, seed: int = 2) -> list[bytes]:
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        picked = rng.sample(range(scale.skus), k=rng.choice((1, 2, 3)))
        body = {
            "channel": CHANNEL,
            "destination": {"lat": rng.uniform(30, 47), "lon": rng.uniform(-120, -75)},
            "lines": [
                {"line_no": i + 1, "sku": sku_id(s), "quantity": 1} for i, s in enumerate(picked)
            ],
        }
        bodies.append(
            http_request("POST", "/v1/checkout/check", "bench", json.dumps(body).encode(), key)
        )
    return bodies


async def check_latencies(port: int, requests: list[bytes]) -> tuple[list[float], int]:
    """One connection, one check at a time: service latency, not queueing. (ms, errors)"""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies, errors = [], 0
    try:
        for request in requests:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += head[9:12] != b"200"
    finally:
        writer.close()
    return latencies, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Report:
    database: str
    scale: Scale
    first: dict = field(default_factory=dict)
    again: dict = field(default_factory=dict)
    generate_seconds: float = 0.0
    ready_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    api_hwm_mib: float = 0.0

    def text(self) -> str:
        s = self.scale
        lines = [
            f"network import on {self.database}: {s.nodes:,} nodes x {s.skus:,} SKUs, "
            f"{s.positions:,} stock positions ({s.per_node:,} per node); files generated in "
            f"{self.generate_seconds:.1f} s",
            "",
            "| file | rows created | import time |",
            "|---|---|---|",
        ]
        lines += [f"| {f['name']} | {f['created']:,} | {f['seconds']:.1f} s |"
                  for f in self.first["files"]]  # fmt: skip
        lines += [
            f"| total (one transaction, commit included) | | **{self.first['total']:.1f} s** |",
            "",
            f"re-import (nothing changes: {not self.again['changed']}): "
            f"{self.again['total']:.1f} s",
            f"peak memory of the import process: {self.first['vm_hwm_mib']:,.0f} MiB "
            f"(re-import {self.again['vm_hwm_mib']:,.0f} MiB)",
            f"API ready (availability cache loaded) in {self.ready_seconds:.1f} s; "
            f"peak memory of the API process {self.api_hwm_mib:,.0f} MiB",
            f"checkout checks: {len(self.latencies)} one at a time, p50 "
            f"{percentile(self.latencies, 0.5):.2f} ms, p99 {percentile(self.latencies, 0.99):.2f} "
            f"ms, {self.errors} errors",
        ]
        return "\n".join(lines)


def run_benchmark(database: str, factor: float, checks: int, workdir: Path) -> Report:
    scale = Scale.of(factor)
    report = Report(database, scale)
    files = workdir / "network"
    started = time.perf_counter()
    generate(files, scale)
    report.generate_seconds = time.perf_counter() - started
    if database == "sqlite":
        url = f"sqlite:///{workdir}/bench.db"
    else:
        url = POSTGRES_URL
        fresh_postgres_schema(SCHEMA)
    try:
        report.first = run_import(files, url)
        report.again = run_import(files, url)
        engine = make_engine(url)
        with transaction(engine) as session:
            key = issue_key(session, "bench web", Role.CHANNEL, channel=CHANNEL).key
        engine.dispose()
        port = free_port()
        started = time.perf_counter()
        api = start_api(url, port)
        try:
            asyncio.run(wait_ready(port, seconds=1800))
            report.ready_seconds = time.perf_counter() - started
            requests = carts(scale, key, checks)
            asyncio.run(check_latencies(port, requests[:20]))  # warm-up: views, key cache
            report.latencies, report.errors = asyncio.run(check_latencies(port, requests))
            report.api_hwm_mib = vm_hwm_mib(api.pid)
        finally:
            api.terminate()
            api.wait()
    finally:
        if database == "postgres":
            _drop_schema()
    return report


def _drop_schema() -> None:
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f"drop schema if exists {SCHEMA} cascade"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--scale", type=float, default=1.0, help="0.1: 500,000 positions")
    parser.add_argument("--checks", type=int, default=500, help="checkout checks to time")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child-import", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import is not None:
        _child_import(args.child_import)
        return
    workdir = Path(tempfile.mkdtemp(prefix="opendom-network-bench-"))
    try:
        print(run_benchmark(args.database, args.scale, args.checks, workdir).text())
    finally:
        if args.keep:
            print(f"files and SQLite database kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
