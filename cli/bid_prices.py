"""`opendom bid-prices refresh|show`: the inventory-aware policy's bid prices.

`refresh` re-solves them now, straight on the ledger database of DATABASE_URL through
services.bid_prices (what the worker's hourly Schedule runs), and prints what it counted;
`show` prints the recent runs and the prices in force, highest first."""

import argparse
import json
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from config import load_settings
from ledger import bid_prices
from ledger.db import make_engine
from services.bid_prices import DEFAULT_HORIZON, DEFAULT_WINDOW, refresh_bid_prices


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser("bid-prices", help="inventory-aware bid prices: refresh, show")
    sub = parser.add_subparsers(dest="bid_prices_command", required=True)
    refresh = sub.add_parser("refresh", help="re-solve the bid prices now and store them")
    refresh.add_argument("--window-days", type=float, default=DEFAULT_WINDOW.days)
    refresh.add_argument("--horizon-days", type=float, default=DEFAULT_HORIZON.days)
    refresh.set_defaults(run=_refresh)
    show = sub.add_parser("show", help="the recent runs and the prices in force")
    show.add_argument("--limit", type=int, default=20, help="prices to print (highest first)")
    show.add_argument("--json", action="store_true", help="everything, as JSON")
    show.set_defaults(run=_show)


def _refresh(args: argparse.Namespace) -> None:
    engine = make_engine(load_settings().database_url)
    result = refresh_bid_prices(
        engine,
        datetime.now(UTC),
        window=timedelta(days=args.window_days),
        horizon=timedelta(days=args.horizon_days),
    )
    engine.dispose()
    print(
        f"run {result.run_id}: {result.status}; {result.orders_counted} orders in "
        f"{result.regions} regions ({result.classes} classes), {result.nodes} nodes x "
        f"{result.skus} SKUs; {result.prices} positive prices; LP {result.solve_seconds:.2f} s"
    )
    if result.error:
        print(f"error: {result.error} (the previous prices stay in force)")
        raise SystemExit(1)


def _show(args: argparse.Namespace) -> None:
    engine = make_engine(load_settings().database_url)
    with Session(engine) as session:  # a read: no write lock
        runs = bid_prices.recent_runs(session)
        latest = bid_prices.latest_run_id(session)
        prices = bid_prices.prices_of(session, latest) if latest else {}
    engine.dispose()
    ranked = sorted(prices.items(), key=lambda kv: (-kv[1], kv[0]))
    if args.json:
        print(
            json.dumps(
                {
                    "runs": [r.model_dump(mode="json") for r in runs],
                    "in_force": latest,
                    "prices": [{"node_id": n, "sku": s, "price": p} for (n, s), p in ranked],
                },
                indent=2,
            )
        )
        return
    if not runs:
        print("no bid-price run yet: `opendom bid-prices refresh`, or wait for the Schedule")
        return
    for run in runs:
        mark = "*" if run.run_id == latest else " "
        print(
            f"{mark} {run.run_id}  {run.solved_at:%Y-%m-%d %H:%M:%S}  {run.status:<6} "
            f"{run.orders_counted:>7} orders  {run.nodes:>4} nodes  {run.skus:>5} SKUs  "
            f"LP {run.solve_seconds:.2f} s" + (f"  {run.error}" if run.error else "")
        )
    print(f"{len(prices)} positive prices in force (run {latest}); highest first:")
    for (node_id, sku), price in ranked[: args.limit]:
        print(f"  {node_id:<24} {sku:<32} {price:10.4f}")
