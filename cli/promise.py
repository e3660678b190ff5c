"""`opendom promise-kept`: the promise-kept measure (GET /v1/promise-kept) on the ledger database
of DATABASE_URL, for an ops review without an API key:

    opendom promise-kept --since 2026-11-01 [--until DATE] [--channel web] [--node DC-1]

One line overall, then one per channel and one per node: shipments with a promise due (ship-by
date) in the window, shipped by their ship-by date, delivered by their promised date."""

import argparse
from datetime import date

from cli.admin import ledger
from domain.promise_kept import PromiseFigures
from services.promise_kept import measure_promise_kept

HEADER = (
    f"{'':<24} {'due':>6} {'shipped':>8} {'on time':>8} {'late d':>7} {'overdue':>8} "
    f"{'deliv.':>7} {'on time':>8} {'late d':>7}"
)


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    kept = commands.add_parser(
        "promise-kept",
        help="shipped by the ship-by date, delivered by the promised date: per channel and node",
    )
    kept.add_argument("--since", type=date.fromisoformat, help="first ship-by date (30 days ago)")
    kept.add_argument("--until", type=date.fromisoformat, help="last ship-by date (none)")
    kept.add_argument("--channel")
    kept.add_argument("--node", dest="node_id")
    kept.set_defaults(run=_promise_kept)


def _promise_kept(args: argparse.Namespace) -> None:
    with ledger() as engine:
        window, kept = measure_promise_kept(
            engine, args.since, args.until, args.channel, args.node_id
        )
    print(f"ship-by dates {window.since} to {window.until or '(no end)'}")
    print(HEADER)
    print(_line("all", kept.overall))
    for channel, figures in sorted(kept.by_channel.items()):
        print(_line(f"channel {channel}", figures))
    for node_id, figures in sorted(kept.by_node.items()):
        print(_line(f"node {node_id}", figures))


def _line(name: str, f: PromiseFigures) -> str:
    return (
        f"{name[:24]:<24} {f.shipments:>6} {f.shipped:>8} {_share(f.shipped_on_time_share):>8} "
        f"{_days(f.average_days_late_shipping):>7} {f.overdue:>8} {f.delivered:>7} "
        f"{_share(f.delivered_on_time_share):>8} {_days(f.average_days_late_delivery):>7}"
    )


def _share(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def _days(days: float | None) -> str:
    return "-" if days is None else f"{days:.1f}"
