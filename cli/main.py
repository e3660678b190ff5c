"""The `opendom` command.

Production jobs (`init`, `keys`, `db`, `network`, and the configuration commands) talk to the
ledger database named by DATABASE_URL through the services, as the API does, and are audited as
`cli:<user>`. The development commands (`up`, `demo`, `seed`, `reconcile`) run the embedded stack
(cli.dev, the only module here that reaches the dev launcher)."""

import argparse
from types import ModuleType

from cli import admin, bid_prices, catalogue, configuration, database, dev, network, promise


def command_modules() -> list[ModuleType]:
    """Each registers its sub-commands with `register(commands)`; each sub-command sets
    `run=<callable(args)>` as its default."""
    return [admin, database, network, configuration, catalogue, promise, bid_prices, dev]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="opendom", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in command_modules():
        module.register(commands)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
