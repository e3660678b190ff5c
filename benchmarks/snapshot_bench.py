"""How long a 100,000-position full snapshot takes to apply, end to end over HTTP and in the
ledger alone, on SQLite (default) or PostgreSQL. Run:

    .venv/bin/python -m benchmarks.snapshot_bench [--db postgres] [--positions 100000]
"""

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import insert

from api.app import create_app
from benchmarks.databases import POSTGRES_URL, fresh_postgres_schema
from config import Settings
from ledger.db import create_schema, make_engine, transaction
from ledger.feeds import apply_snapshot
from ledger.tables import Node, Sku
from security.keys import issue_key
from security.roles import Role


def prepare(url: str, positions: int) -> None:
    if url.startswith("postgres"):
        fresh_postgres_schema("opendom_snapshot_bench")
    engine = make_engine(url)
    create_schema(engine)
    with engine.begin() as c:
        c.execute(insert(Sku), [{"sku": f"S{i:06d}", "name": "x", "unit_price": 1.0}
                                for i in range(positions)])  # fmt: skip
        for node_id in ("DC1", "DC2"):
            c.execute(insert(Node), [{"node_id": node_id, "name": node_id, "node_type": "dc",
                                      "lat": 0.0, "lon": 0.0, "can_ship": True, "can_pickup": False,
                                      "daily_capacity": 1, "priority": 1, "active": True,
                                      "system_url": "-"}])  # fmt: skip
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--positions", type=int, default=100_000)
    args = parser.parse_args()
    url = (
        f"sqlite:///{tempfile.mkdtemp(prefix='opendom-snap-')}/snap.db"
        if args.db == "sqlite"
        else POSTGRES_URL
    )
    prepare(url, args.positions)
    rng = random.Random(3)
    now = datetime.now(UTC)
    counts = {f"S{i:06d}": rng.randrange(0, 500) for i in range(args.positions)}

    engine = make_engine(url)
    for label, as_of in (("first load (creates positions)", now - timedelta(hours=2)),
                         ("replacing load (updates)", now - timedelta(hours=1))):  # fmt: skip
        started = time.perf_counter()
        with transaction(engine) as session:
            apply_snapshot(session, "bench", label, "DC1", as_of, counts)
        print(f"ledger  {label:<32} {args.positions:,} positions: "
              f"{time.perf_counter() - started:5.1f} s")  # fmt: skip

    body = {
        "event_id": "http-1",
        "node_id": "DC2",
        "as_of": now.isoformat(),
        "positions": [{"sku": sku, "on_hand": units} for sku, units in counts.items()],
    }
    with transaction(engine) as session:
        ops = issue_key(session, "snapshot bench", Role.OPS)  # feeds are an ops capability
    headers = {"authorization": f"Bearer {ops.key}"}
    with TestClient(create_app(Settings(database_url=url, temporal_address="127.0.0.1:1"))) as api:
        started = time.perf_counter()
        response = api.post("/v1/feeds/bench/snapshots", json=body, headers=headers)
        elapsed = time.perf_counter() - started
    print(f"HTTP    POST /v1/feeds/bench/snapshots        {args.positions:,} positions: "
          f"{elapsed:5.1f} s -> {response.status_code} {response.json()}")  # fmt: skip
    engine.dispose()


if __name__ == "__main__":
    main()
