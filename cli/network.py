"""A retailer's network from a folder of files, and back (docs/network-files.md), straight to
the ledger database of DATABASE_URL, audited as `cli:<os user>`:

    opendom network import DIR            apply DIR's network files, whole or not at all
    opendom network import DIR --check    validate everything, apply nothing
    opendom network export DIR [--format csv|json]

A refused line is printed on stderr, one per line (`nodes.csv:17: node_type: ...`), and the
command exits 2 with nothing applied from any file."""

import argparse
import sys
from pathlib import Path

from cli.admin import REFUSED, actor, ledger
from domain.network_files import FileFormat
from services.network_files import (
    ExportRefused,
    NetworkFilesRefused,
    export_folder,
    import_folder,
)


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    network = commands.add_parser(
        "network", help="import or export the whole network as files (docs/network-files.md)"
    ).add_subparsers(dest="network_command", required=True)
    load = network.add_parser(
        "import",
        help="apply a folder's carriers, nodes, skus, channels and stock files (.csv or .json)",
        description="Every file is validated first; any refused line and nothing is applied. "
        "Importing the same files again changes nothing.",
    )
    load.add_argument("directory", type=Path, metavar="DIR")
    load.add_argument("--check", action="store_true", help="validate everything, apply nothing")
    load.set_defaults(run=_import)
    dump = network.add_parser(
        "export", help="write the network as the five files, sorted by id (import reads them)"
    )
    dump.add_argument("directory", type=Path, metavar="DIR")
    dump.add_argument("--format", choices=[f.value for f in FileFormat], default="csv")
    dump.set_defaults(run=_export)


def _import(args: argparse.Namespace) -> None:
    with ledger() as engine:
        try:
            outcome = import_folder(engine, args.directory, actor(), check=args.check)
        except NetworkFilesRefused as exc:
            for line in exc.refused:
                print(line, file=sys.stderr)
            print(
                f"opendom: nothing applied: {len(exc.refused)} refused "
                f"line{'s' if len(exc.refused) != 1 else ''}",
                file=sys.stderr,
            )
            raise SystemExit(REFUSED) from None
    for file in outcome.files:
        if outcome.applied:
            print(file)
        else:
            print(f"{file.name}: {file.created} to create, {file.updated} to update, "
                  f"{file.unchanged} unchanged")  # fmt: skip
    if not outcome.applied:
        print("checked: every file is valid; nothing applied (--check)")
    elif not outcome.changed:
        print("nothing changed: the ledger already matches these files")


def _export(args: argparse.Namespace) -> None:
    with ledger() as engine:
        try:
            written = export_folder(engine, args.directory, FileFormat(args.format))
        except ExportRefused as exc:
            print(f"opendom: {exc}", file=sys.stderr)
            raise SystemExit(REFUSED) from None
    print(f"wrote {', '.join(written)} to {args.directory}")
