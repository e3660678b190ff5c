"""Parcels per order with and without grouping orders (issue 14, item 6), on a stream with
repeat customers.

    .venv/bin/python -m benchmarks.sourcing.grouping [--seeds 2] [--orders 4000]
        [--repeat-share 0.1 0.2 0.3] [--window 1800] [--horizon-days 1]

The sourcing benchmark's instance (instance.py) gives each order its city and items; here each
order also gets an arrival time (a Poisson stream over the horizon) and a customer: with
probability `repeat share` a customer of the same city who ordered within the window (their
address with it), else a new one. OpenDOM's live allocation (the myopic optimizer, policies.py)
sources every order as it comes, blind to parcels; then `domain.parcels.assign_parcels`, the
rule services.parcels applies in the ledger, says which shipments share a parcel: one customer,
one address, one centre, within the window of the parcel's first shipment. Packages per order
without grouping are the sourcing benchmark's; parcels per order are what the carrier is paid
for with grouping on.
"""

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from benchmarks.sourcing.instance import Instance, build_instance
from benchmarks.sourcing.policies import OpenDomOptimizer
from benchmarks.sourcing.simulate import Outcome, simulate
from domain.parcels import Allocated, ParcelKey, assign_parcels

START = datetime(2026, 12, 1, tzinfo=UTC)
SUPPLY = 1.02  # run.py's DEFAULT_SUPPLY: the same instances as the sourcing benchmark's rows


@dataclass(frozen=True)
class Stream:
    """Who placed each order of an instance, and when (seconds from the start)."""

    customers: list[str]
    at_seconds: list[float]

    @property
    def repeat_orders(self) -> int:
        return len(self.customers) - len(set(self.customers))


def repeat_customer_stream(
    instance: Instance, share: float, window_seconds: float, horizon_seconds: float, seed: int
) -> Stream:
    """Arrivals uniform over the horizon (a Poisson stream, sorted); a share of the orders are
    placed by a customer of the same city whose last order was within the window."""
    rng = np.random.default_rng(seed)
    at = np.sort(rng.uniform(0, horizon_seconds, len(instance.orders)))
    last_seen: dict[int, list[tuple[str, float]]] = {}  # city -> (customer, last order time)
    customers: list[str] = []
    for n, (order, t) in enumerate(zip(instance.orders, at, strict=True)):
        recent = [c for c, seen in last_seen.get(order.region, []) if t - seen < window_seconds]
        if recent and rng.random() < share:
            customer = recent[int(rng.integers(len(recent)))]
        else:
            customer = f"C-{n}"
        customers.append(customer)
        kept = [(c, s) for c, s in last_seen.get(order.region, []) if c != customer]
        last_seen[order.region] = [*kept, (customer, float(t))]
    return Stream(customers=customers, at_seconds=[float(t) for t in at])


def parcels(instance: Instance, outcome: Outcome, stream: Stream, window_seconds: float) -> int:
    """Parcels with grouping: each order's shipments (one per centre), through the one rule."""
    shipments = [
        Allocated(
            key=ParcelKey(
                channel="web",
                customer_id=customer,
                address_key=customer,  # one address per customer in this stream
                node_id=instance.nodes[node].node_id,
            ),
            at=START + timedelta(seconds=at),
            window_seconds=window_seconds,
        )
        for nodes, customer, at in zip(
            outcome.order_nodes, stream.customers, stream.at_seconds, strict=True
        )
        for node in sorted(nodes)
    ]
    return len(set(assign_parcels(shipments)))


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()
    horizon = args.horizon_days * 86400.0
    print(
        f"parcels per order, OpenDOM live allocation (myopic), window {args.window:g} s, "
        f"{args.orders} orders over {args.horizon_days:g} day(s) per seed"
    )
    print(
        f"  {'seed':>4} {'repeat':>6} {'repeat orders':>13} {'without':>8} {'with':>8} {'saved':>6}"
    )
    for seed in range(1, args.seeds + 1):
        instance = build_instance(seed, args.orders, supply_factor=SUPPLY)
        outcome = simulate(instance, OpenDomOptimizer("OpenDOM live allocation, myopic"))
        for share in args.repeat_share:
            stream = repeat_customer_stream(instance, share, args.window, horizon, seed)
            grouped = parcels(instance, outcome, stream, args.window)
            without = outcome.packages / outcome.orders
            with_ = grouped / outcome.orders
            print(
                f"  {seed:>4} {share:>6.0%} {stream.repeat_orders:>13} {without:>8.3f} "
                f"{with_:>8.3f} {1 - with_ / without:>6.1%}"
            )
    print(f"run took {time.perf_counter() - started:.0f} s")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--repeat-share", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    parser.add_argument("--window", type=float, default=1800.0, help="consolidation window, s")
    parser.add_argument("--horizon-days", type=float, default=1.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
