"""`python -m chaos`: see chaos.harness."""

import argparse
from pathlib import Path

from chaos.harness import ChaosPlan, run_chaos


def main() -> None:
    defaults = ChaosPlan()
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--orders", type=int, default=defaults.orders)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="orders per second")
    parser.add_argument("--worker-kills", type=int, default=defaults.worker_kills)
    parser.add_argument("--server-restarts", type=int, default=defaults.server_restarts)
    parser.add_argument("--api-restarts", type=int, default=defaults.api_restarts)
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate)
    parser.add_argument("--late-ship-rate", type=float, default=defaults.late_ship_rate)
    parser.add_argument(
        "--reject-after-pick-rate", type=float, default=defaults.reject_after_pick_rate
    )
    parser.add_argument(
        "--support-moves-late-share",
        type=float,
        default=None,
        help="of the late shipments, the share support moves; the SLA moves the others "
        "(default: all up to 100 orders, else half)",
    )
    parser.add_argument(
        "--carrier-outage-seconds",
        type=float,
        default=None,
        help="default: 6 s per 30 orders, at most 2 minutes",
    )
    parser.add_argument(
        "--partial-orders",
        type=int,
        default=None,
        help="ship-partial orders with a short line a receipt or a delta completes later "
        "(default: a tenth of the orders, at least 2)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--settle-seconds", type=float, default=defaults.settle_seconds)
    parser.add_argument("--state-dir", type=Path, default=None, help="keep state and logs here")
    args = parser.parse_args()
    report = run_chaos(
        ChaosPlan(
            orders=args.orders,
            rate=args.rate,
            worker_kills=args.worker_kills,
            server_restarts=args.server_restarts,
            api_restarts=args.api_restarts,
            fault_rate=args.fault_rate,
            late_ship_rate=args.late_ship_rate,
            reject_after_pick_rate=args.reject_after_pick_rate,
            support_moves_late_share=args.support_moves_late_share,
            carrier_outage_seconds=args.carrier_outage_seconds,
            partial_orders=args.partial_orders,
            seed=args.seed,
            settle_seconds=args.settle_seconds,
            state_dir=args.state_dir,
        )
    )
    print(report.text())
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
