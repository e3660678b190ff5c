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
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate)
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
            fault_rate=args.fault_rate,
            seed=args.seed,
            settle_seconds=args.settle_seconds,
            state_dir=args.state_dir,
        )
    )
    print(report.text())
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
