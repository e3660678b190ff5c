"""Development commands: `up` (the whole embedded stack, on the demo network or your network
files), `demo` (sample orders), `seed` (the demo network), `reconcile` (rebuild positions from
the ledger entries and report drift)."""

import argparse
import asyncio
from pathlib import Path

from config import Settings, load_settings

STATE_DIR_HELP = (
    "the stack's state folder; its ledger is <state-dir>/opendom.db unless DATABASE_URL is set"
)


def with_state_dir_ledger(settings: Settings, state_dir: Path) -> Settings:
    """The ledger lives in the state folder, so a second stack (--state-dir) has its own, and
    `seed` and `reconcile` given the same folder look at that ledger. DATABASE_URL still wins."""
    if "database_url" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"database_url": f"sqlite:///{state_dir}/opendom.db"})


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    up = commands.add_parser(
        "up",
        help="run Temporal, simulators, API and worker on the demo network, or on yours",
        description="Without --network or --no-demo: the demo network, demo keys, demo orders "
        "and demo SLAs (seconds). With either: only an admin key, production SLAs "
        "(OPENDOM_SLA_SCALE to change them), and the simulators only with --simulators.",
    )
    up.add_argument("--state-dir", default=".state", type=Path, help=STATE_DIR_HELP)
    up.add_argument("--ui-port", default=8233, type=int)
    up.add_argument("--demo-orders", default=5, type=int, help="orders to submit once up")
    own = up.add_mutually_exclusive_group()
    own.add_argument(
        "--network",
        type=Path,
        metavar="DIR",
        help="import this folder's network files (docs/network-files.md) instead of the demo",
    )
    own.add_argument(
        "--no-demo",
        action="store_true",
        help="an empty network: nodes come later, by the API or `opendom network import`",
    )
    up.add_argument(
        "--simulators",
        action="store_true",
        help="with --network or --no-demo: also run the node and carrier simulators, which "
        "serve the nodes whose connector_kind is simulator (the demo always has them)",
    )
    up.set_defaults(run=_up)
    demo = commands.add_parser("demo", help="submit sample orders to a running OpenDOM")
    demo.add_argument("--orders", default=50, type=int)
    demo.add_argument("--concurrency", default=4, type=int)
    demo.add_argument("--seed", default=None, type=int)
    demo.set_defaults(run=_demo)
    seed = commands.add_parser("seed", help="seed the demo network into the ledger")
    seed.set_defaults(run=_seed)
    reconcile = commands.add_parser(
        "reconcile", help="rebuild positions from the ledger entries and report any drift"
    )
    reconcile.set_defaults(run=_reconcile)
    for command in (seed, reconcile):
        command.add_argument("--state-dir", default=".state", type=Path, help=STATE_DIR_HELP)


def _up(args: argparse.Namespace) -> None:
    from stack.launcher import Network, run_stack

    if args.network is not None and not args.network.is_dir():
        raise SystemExit(f"--network {args.network}: not a folder of network files")
    demo = args.network is None and not args.no_demo
    network = Network(
        demo=demo,
        directory=args.network,
        simulators=demo or args.simulators,
        demo_orders=args.demo_orders,
    )
    # Absolute: the stack's processes run in the project's folder, not where `up` was typed.
    state_dir = args.state_dir.resolve()
    settings = with_state_dir_ledger(load_settings(), state_dir)
    if demo and "sla_scale" not in settings.model_fields_set:
        # Demo SLAs in seconds rather than hours, so reallocation is visible while watching.
        # Your own network keeps the production SLAs (OPENDOM_SLA_SCALE still wins).
        settings = settings.model_copy(update={"sla_scale": 0.01})
    run_stack(settings, state_dir, args.ui_port, network)


def _demo(args: argparse.Namespace) -> None:
    from stack.demo import run_demo
    from stack.keys import api_key_from_environment

    settings = load_settings()
    key = api_key_from_environment()
    if key is None:
        raise SystemExit("no API key: set OPENDOM_API_KEY, or run `make run` first")
    outcome = asyncio.run(
        run_demo(settings.api_url, args.orders, args.concurrency, args.seed, api_key=key)
    )
    print("outcome:", ", ".join(f"{k} {v}" for k, v in sorted(outcome.items())))


def _reconcile(args: argparse.Namespace) -> None:
    from ledger.audit import ledger_imbalances
    from ledger.db import create_schema, make_engine, transaction
    from ledger.positions import oversold_positions

    settings = with_state_dir_ledger(load_settings(), args.state_dir)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    with transaction(engine) as session:
        problems = ledger_imbalances(session)
        oversold = oversold_positions(session)
    print("\n".join(problems) if problems else "ledger balances: no drift")
    # Not drift: a count below what is promised; a person moves the orders or counts again.
    for position in oversold:
        print(f"warning: {position}")
    raise SystemExit(1 if problems else 0)


def _seed(args: argparse.Namespace) -> None:
    from ledger.db import create_schema, make_engine
    from stack.demo_data import seed_demo_network

    settings = with_state_dir_ledger(load_settings(), args.state_dir)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    print(f"created {seed_demo_network(engine, settings.carrier_url)} stock positions")
