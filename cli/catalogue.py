"""The catalogue from the command line: `opendom sku put|show|list` and `opendom pim add|pull`.

Straight to the ledger database of DATABASE_URL through services.catalogue, as the API does,
audited as `cli:<user>`. A refused item is printed as `FILE: [index] field: message` and nothing
is applied (exit status 2)."""

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from cli.admin import actor
from config import load_settings
from domain.errors import UnknownReference
from ledger.db import make_engine, transaction
from ledger.tables import Sku
from services import catalogue
from services.catalogue import InvalidSkuSpecs

LIST_PAGE = 1000
NAMED = 20  # SKUs named in what a command changed; the rest are counted


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    sku = commands.add_parser("sku", help="the catalogue's SKUs: put, show, list")
    skus = sku.add_subparsers(dest="sku_command", required=True)
    put = skus.add_parser("put", help="create or update SKUs from a JSON file (one or a list)")
    put.add_argument("file", help="a JSON SKU specification or a list of them; - for stdin")
    put.set_defaults(run=_put)
    show = skus.add_parser("show", help="one SKU's specification, as JSON `put` takes back")
    show.add_argument("sku")
    show.set_defaults(run=_show)
    listing = skus.add_parser("list", help="every SKU in SKU order")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--active", dest="active", action="store_true", default=None)
    which.add_argument("--inactive", dest="active", action="store_false")
    listing.set_defaults(run=_list)

    pim = commands.add_parser("pim", help="PIMs the catalogue is pulled from: add, pull")
    pims = pim.add_subparsers(dest="pim_command", required=True)
    add = pims.add_parser("add", help="name a PIM to pull (the housekeeping pulls it from then)")
    add.add_argument("source", help="a name for the PIM (its feed source)")
    add.add_argument("url", help="the PIM's base URL: OpenDOM asks <url>/catalogue?cursor=")
    add.set_defaults(run=_add_pim)
    pull = pims.add_parser("pull", help="pull a PIM's catalogue now and print what changed")
    pull.add_argument("source")
    pull.set_defaults(run=_pull_pim)


def _engine() -> Engine:
    return make_engine(load_settings().database_url)


def _put(args: argparse.Namespace) -> None:
    items = _read_items(args.file)
    try:
        specs = catalogue.parse_sku_specs(items)
    except InvalidSkuSpecs as exc:
        for problem in exc.problems:
            where = f"{args.file}: [{problem.index}] {problem.field or 'item'}"
            print(f"{where}: {problem.message}", file=sys.stderr)
        raise SystemExit(2) from exc
    with transaction(_engine()) as session:
        applied = catalogue.apply_skus(session, specs, actor())
    _print_changes(applied.created, applied.updated, applied.unchanged)


def _read_items(name: str) -> list[Any]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        document = json.loads(text)
    except OSError as exc:
        print(f"{name}: {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    except json.JSONDecodeError as exc:
        print(f"{name}: not JSON: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    return document if isinstance(document, list) else [document]


def _show(args: argparse.Namespace) -> None:
    with Session(_engine()) as session:
        row = catalogue.get_sku(session, args.sku)
        if row is None:
            print(f"no SKU {args.sku}", file=sys.stderr)
            raise SystemExit(1)
        print(json.dumps(_exported(row), indent=2))


def _list(args: argparse.Namespace) -> None:
    with Session(_engine()) as session:
        for row in _all_skus(session, args.active):
            state = "active" if row.active else "inactive"
            print(f"{row.sku:<24} {state:<8} {row.unit_price:>9.2f}  {row.name}")


def _all_skus(session: Session, active: bool | None) -> Iterator[Sku]:
    after: str | None = None
    while page := catalogue.list_skus(session, active, after, LIST_PAGE):
        yield from page
        after = page[-1].sku


def _exported(row: Sku) -> dict[str, Any]:
    """What `opendom sku put` takes back unchanged (`show X > x.json`, edit, `put x.json`)."""
    return catalogue.sku_spec(row).model_dump()


def _add_pim(args: argparse.Namespace) -> None:
    if not args.url.startswith(("http://", "https://")):
        print(f"url: {args.url} is not an http(s) URL", file=sys.stderr)
        raise SystemExit(2)
    try:
        with transaction(_engine()) as session:
            done = catalogue.set_catalogue_source(session, args.source, args.url, actor())
    except catalogue.SourceMismatch as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc
    print(f"pim {args.source}: {done} ({args.url})")


def _pull_pim(args: argparse.Namespace) -> None:
    # The one connector the command line reaches: the pull is done here and now, not by a
    # worker (the housekeeping does the same through activities.housekeeping).
    from connectors.errors import ConnectorError
    from connectors.pim import PimConnector

    connector = PimConnector()
    try:
        pull = catalogue.pull_catalogue(_engine(), args.source, connector.fetch_page, actor())
    except UnknownReference as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc
    except ConnectorError as exc:
        print(f"pim {args.source} not pulled: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    finally:
        connector.close()
    print(f"pim {args.source}: {pull.pages} page(s), cursor now {pull.cursor}")
    _print_changes(pull.created, pull.updated, pull.unchanged)
    if pull.refused:
        print(f"refused the {pull.refused}", file=sys.stderr)
        raise SystemExit(1)


def _print_changes(created: list[str], updated: list[str], unchanged: int) -> None:
    print(f"created {len(created)}{_named(created)}")
    print(f"updated {len(updated)}{_named(updated)}")
    print(f"unchanged {unchanged}")


def _named(skus: list[str]) -> str:
    if not skus:
        return ""
    more = f" and {len(skus) - NAMED} more" if len(skus) > NAMED else ""
    return f": {', '.join(skus[:NAMED])}{more}"
