"""Sourcing benchmark: OpenDOM's live allocation against published baselines and the LP bound.

    .venv/bin/python -m benchmarks.sourcing.run [--seeds 4] [--orders 4000] [--supply 1.02]

With `--repeat-share` (default 0.2) each seed also prints parcels per order of that row without
and with grouping the orders of repeat customers (grouping.py; issue 14).

Set-up after Jasin & Sinha (2015) and Ma (arXiv 2207.04774): see instance.py. OpenDOM's rows are
the decision the allocation activity makes, `services.allocation.plan_allocation`, given one
AllocationRequest per order and the centres' NodeProfiles (policies.py). For each seed it
prints every policy's total cost divided by the fluid LP lower bound, packages per order, the
share of single-package orders, unfilled units and the p50/p99 decision time; then the decision
time of `plan_allocation` on a 200-node network (10 centres + 190 stores) with a bid price on
every node/SKU pair.

The bound is the fluid LP over the horizon's expected demand subject to the starting stock, with
one column per way of fulfilling an order (Jasin & Sinha's deterministic LP), solved exactly by
column generation (bid_prices.py). Decision times include building the optimizer's input models;
the periodic LP re-solves of the bid-price policy are a background job (the live Schedule) and
are timed apart. The two myopic rows must agree: the baseline finds the per-order optimum by
trying every set of centres, OpenDOM's optimizer by its own search, so equal figures check the
optimizer's exactness.
"""

import argparse
import sys
import time

from benchmarks.sourcing.grouping import parcels, repeat_customer_stream
from benchmarks.sourcing.instance import PACKAGE_COST, Instance, build_instance
from benchmarks.sourcing.latency import Latency, measure
from benchmarks.sourcing.policies import (
    MyopicBruteForce,
    NearestPerItem,
    OpenDomOptimizer,
    Policy,
)
from benchmarks.sourcing.simulate import Outcome, simulate
from sourcing.bid_prices import DEFAULT_SMOOTHING, FluidSolution, solve_fluid_lp

# Stock is 2% above expected demand: scarce enough that centres run out of items and orders
# must be split or sent far, yet the stock-outs that demand noise alone forces on every policy
# (invisible to the LP over expected demand, each costing twice a parcel from the farthest
# centre) stay near 2% of cost instead of 4-6% at --supply 1.0.
DEFAULT_SUPPLY = 1.02
TARGET_RATIO = 1.05
TARGET_P99_MS = 10.0
MYOPIC = "OpenDOM live allocation, myopic"
BID_PRICES = "OpenDOM live allocation + LP bid prices"


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()
    ratios: list[float] = []
    fewer_packages: list[bool] = []
    resolves: list[tuple[int, float]] = []
    for seed in range(1, args.seeds + 1):
        instance = build_instance(
            seed, args.orders, supply_factor=args.supply, alpha=args.alpha, p_stock=args.p_stock
        )
        bound, lp_seconds = _bound(instance)
        outcomes = [simulate(instance, p) for p in _policies(args, bound)]
        _print_seed(instance, bound, lp_seconds, outcomes)
        ours, baselines = _verdict(outcomes)
        _print_grouping(instance, ours, args, seed)
        ratios.append(ours.total_cost / bound.objective)
        fewer_packages.append(
            all(ours.packages_per_order < b.packages_per_order for b in baselines)
        )
        resolves.append((ours.lp_solves, ours.lp_seconds))
    latency = measure(args.latency_orders, seed=args.seeds + 100)
    _print_latency(latency)
    _print_summary(ratios, fewer_packages, resolves, latency, time.perf_counter() - started)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--orders", type=int, default=4000, help="orders per seed (the horizon)")
    # The live Schedule re-solves hourly for a 7-day horizon, 0.6% of it; every 1% (40 orders)
    # is close to that and keeps a seed near four minutes. On seed 1 at --supply 1.0, cost/LP
    # went 1.0563, 1.0543, 1.0529, 1.0520 re-solving every 10, 5, 2.5 and 1%.
    parser.add_argument("--resolve-every", type=float, default=0.01, help="fraction of horizon")
    parser.add_argument(
        "--supply", type=float, default=DEFAULT_SUPPLY, help="stock / expected demand"
    )
    parser.add_argument("--alpha", type=float, default=0.5, help="demand shift; 0.5 = stationary")
    parser.add_argument(
        "--p-stock", type=float, default=0.75, help="chance a centre stocks an item"
    )
    parser.add_argument("--latency-orders", type=int, default=1000)
    parser.add_argument(
        "--repeat-share",
        type=float,
        default=0.2,
        help="share of orders placed by a recent customer of the same city (grouping.py)",
    )
    parser.add_argument("--window", type=float, default=1800.0, help="consolidation window, s")
    parser.add_argument(
        "--follow-lp",
        action=argparse.BooleanOptionalAction,
        # Off: live allocation has no LP class plans (the Schedule stores bid prices only), so
        # the default rows stay the live decision. On, cost/LP fell on all 4 seeds at 1.0
        # (1.0528/1.0525/1.0446/1.0124 to 1.0512/1.0512/1.0437/1.0119), no worse at 1.02.
        default=False,
        help="orders of an LP demand class follow the LP's own methods (sourcing.allocation)",
    )
    parser.add_argument(
        "--smoothing",
        type=float,
        default=DEFAULT_SMOOTHING,
        help="share of the prices in force a re-solve keeps, as the live refresh (0: the new LP's)",
    )
    return parser.parse_args(argv)


def _bound(instance: Instance) -> tuple[FluidSolution, float]:
    started = time.perf_counter()
    solution = solve_fluid_lp(
        instance.expected_classes(0),
        instance.inventory_map(instance.inventory),
        instance.lane_costs(),
        PACKAGE_COST,
        instance.unserved_unit_penalty,
    )
    return solution, time.perf_counter() - started


def _policies(args: argparse.Namespace, bound: FluidSolution) -> list[Policy]:
    return [
        NearestPerItem(),
        MyopicBruteForce(),
        OpenDomOptimizer(MYOPIC),
        OpenDomOptimizer(
            BID_PRICES,
            args.resolve_every,
            initial=bound,
            follow_lp=args.follow_lp,
            smoothing=args.smoothing,
        ),
    ]


def _verdict(outcomes: list[Outcome]) -> tuple[Outcome, list[Outcome]]:
    """The inventory-aware live policy, and the baselines it must beat on packages."""
    ours = next(o for o in outcomes if o.policy == BID_PRICES)
    baselines = [o for o in outcomes if not o.policy.startswith("OpenDOM")]
    return ours, baselines


def _print_seed(
    instance: Instance, bound: FluidSolution, lp_seconds: float, outcomes: list[Outcome]
) -> None:
    units = sum(len(o.skus) for o in instance.orders)
    print(
        f"\nseed {instance.seed}: {len(instance.orders)} orders, {units} units, "
        f"{int(instance.inventory.sum())} units in stock at {len(instance.nodes)} centres, "
        f"{len(instance.cities)} cities, {instance.demand_beyond_stock()} units ordered beyond "
        f"stock (unfilled whatever the policy); LP bound ${bound.objective:,.0f} "
        f"({bound.expected_packages / len(instance.orders):.3f} packages/order, "
        f"{bound.rounds} rounds, {lp_seconds:.1f} s)"
    )
    header = (
        f"  {'policy':<40} {'cost/LP':>8} {'pkg/order':>9} {'1-pkg':>6} "
        f"{'unfilled':>8} {'p50 ms':>7} {'p99 ms':>7}  LP re-solves"
    )
    print(header)
    for o in outcomes:
        solves = f"{o.lp_solves} in {o.lp_seconds:.0f} s" if o.lp_solves else "-"
        print(
            f"  {o.policy:<40} {o.total_cost / bound.objective:>8.4f} "
            f"{o.packages_per_order:>9.3f} {o.single_package_share:>6.1%} {o.unfilled_units:>8} "
            f"{o.percentile_ms(50):>7.2f} {o.percentile_ms(99):>7.2f}  {solves}"
        )


def _print_grouping(instance: Instance, ours: Outcome, args: argparse.Namespace, seed: int) -> None:
    """Parcels per order of the live policy's shipments, without and with grouping the orders
    of repeat customers (one day's stream; domain.parcels, as services.parcels does)."""
    stream = repeat_customer_stream(instance, args.repeat_share, args.window, 86400.0, seed)
    grouped = parcels(instance, ours, stream, args.window)
    print(
        f"  parcels per order, {stream.repeat_orders} orders from repeat customers "
        f"({args.repeat_share:.0%} asked, {args.window:g} s window, over a day): "
        f"{ours.packages_per_order:.3f} without grouping, {grouped / ours.orders:.3f} with"
    )


def _print_latency(latency: Latency) -> None:
    print(
        f"\nplan_allocation with a bid price on every node/SKU pair, {latency.nodes} candidate "
        f"nodes (10 centres + 190 stores), {latency.orders} orders of 1-5 lines: "
        f"p50 {latency.p50_ms:.2f} ms, p99 {latency.p99_ms:.2f} ms, max {latency.max_ms:.2f} ms "
        f"({latency.mean_packages:.2f} packages/order)"
    )


def _print_summary(
    ratios: list[float],
    fewer_packages: list[bool],
    resolves: list[tuple[int, float]],
    latency: Latency,
    seconds: float,
) -> None:
    worst = max(ratios)
    solves = sum(n for n, _ in resolves)
    per_solve = sum(s for _, s in resolves) / solves if solves else 0.0
    print(
        f"\n{BID_PRICES}: cost/LP {min(ratios):.4f}-{worst:.4f} over {len(ratios)} seeds "
        f"(goal <= {TARGET_RATIO} on every seed: {'met' if worst <= TARGET_RATIO else 'missed'}); "
        f"fewer packages/order than both baselines on {sum(fewer_packages)}/"
        f"{len(fewer_packages)} seeds; LP re-solve {per_solve:.1f} s on average; p99 on 200 nodes "
        f"{latency.p99_ms:.2f} ms (goal <= {TARGET_P99_MS:.0f} ms: "
        f"{'met' if latency.p99_ms <= TARGET_P99_MS else 'missed'}); run took {seconds:.0f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
