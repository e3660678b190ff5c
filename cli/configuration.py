"""Configuring the network from the command line, straight to the ledger database of
DATABASE_URL through services.configuration (as the API does), audited as `cli:<os user>`:

    opendom node put FILE.json        one node specification or a list (- reads stdin)
    opendom node deactivate NODE --reason TEXT
    opendom node list | show NODE     show prints JSON that `node put` takes back unchanged
    opendom channel put FILE.json | list
    opendom carrier put FILE.json | list
    opendom changes [--entity node] [--id WH-LYON] [--limit 20]

`put` prints one line per entity (`created WH-LYON`, `updated ...`, `unchanged ...`). A file with
a bad field prints `FILE: field: message` (`FILE: [index] field: message` in a list) for every
problem and applies nothing (exit status 2); so does a refusal of the batch (a duplicate id, a
pool naming an unknown node)."""

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cli.admin import actor
from config import load_settings
from domain.configuration import Applied, CarrierServiceSpec, ChannelSpec, NodeSpec
from domain.errors import DomainError
from ledger.config_audit import changes_of
from ledger.db import (
    SchemaNewerThanCode,
    SchemaNotMigrated,
    SchemaOutOfDate,
    make_engine,
    prepare_schema,
    transaction,
)
from ledger.tables import CarrierServiceRow, Channel, ChannelPool, Node
from services import configuration

REFUSED = 2
NOT_FOUND = 1
Spec = TypeVar("Spec", bound=BaseModel)


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    node = commands.add_parser("node", help="network nodes: put, deactivate, list, show")
    nodes = node.add_subparsers(dest="node_command", required=True)
    _put_command(nodes, "nodes", _put_nodes)
    deactivate = nodes.add_parser("deactivate", help="take a node out of sourcing for good")
    deactivate.add_argument("node_id")
    deactivate.add_argument("--reason", required=True, help="why, for the audit trail")
    deactivate.set_defaults(run=_deactivate)
    nodes.add_parser(
        "list", help="every node, its type, status and whether it sources"
    ).set_defaults(run=_list_nodes)
    show = nodes.add_parser("show", help="a node's configuration as JSON `node put` takes back")
    show.add_argument("node_id")
    show.set_defaults(run=_show_node)

    channel = commands.add_parser("channel", help="sales channels and their pools: put, list")
    channels = channel.add_subparsers(dest="channel_command", required=True)
    _put_command(channels, "channels (with their pools)", _put_channels)
    channels.add_parser("list", help="every channel and its pool").set_defaults(run=_list_channels)

    carrier = commands.add_parser("carrier", help="carrier services: put, list")
    carriers = carrier.add_subparsers(dest="carrier_command", required=True)
    _put_command(carriers, "carrier services", _put_carrier_services)
    carriers.add_parser("list", help="every carrier service").set_defaults(run=_list_carriers)

    changes = commands.add_parser("changes", help="the configuration audit trail, newest first")
    changes.add_argument("--entity", help="node | channel | carrier | sku | ...")
    changes.add_argument("--id", dest="entity_id", help="the entity's id (carrier/service)")
    changes.add_argument("--limit", type=int, default=50)
    changes.set_defaults(run=_changes)


def _put_command(
    group: "argparse._SubParsersAction[argparse.ArgumentParser]",
    what: str,
    run: Callable[[argparse.Namespace], None],
) -> None:
    put = group.add_parser("put", help=f"create or update {what} from a JSON file")
    put.add_argument("file", help="a JSON specification or a list of them; - reads stdin")
    put.set_defaults(run=run)


# ------------------------------------------------------------------------------- database


def _refuse(message: str, code: int = REFUSED) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(code)


@contextmanager
def _ledger() -> Iterator[Engine]:
    """The database of DATABASE_URL as the API finds it: migrated at once in embedded mode,
    only checked in production mode (where `opendom db upgrade` migrates)."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        prepare_schema(engine, migrate=settings.migrates_at_start)
        yield engine
    except (SchemaNotMigrated, SchemaNewerThanCode, SchemaOutOfDate) as exc:
        _refuse(f"opendom: {exc}", 1)
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------ put


def _put_nodes(args: argparse.Namespace) -> None:
    _put(args, NodeSpec, configuration.apply_nodes, lambda s: s.node_id)


def _put_channels(args: argparse.Namespace) -> None:
    _put(args, ChannelSpec, configuration.apply_channels, lambda s: s.channel)


def _put_carrier_services(args: argparse.Namespace) -> None:
    _put(
        args,
        CarrierServiceSpec,
        configuration.apply_carrier_services,
        lambda s: f"{s.carrier}/{s.service}",
    )


def _put(
    args: argparse.Namespace,
    model: type[Spec],
    apply: Callable[[Session, Sequence[Spec], str], Applied],
    id_of: Callable[[Spec], str],
) -> None:
    specs = _read_specs(args.file, model)
    try:
        with _ledger() as engine, transaction(engine) as session:
            applied = apply(session, specs, actor())
    except DomainError as exc:
        _refuse(f"{args.file}: {exc}")
    for spec in specs:
        entity_id = id_of(spec)
        if entity_id in applied.created:
            print(f"created {entity_id}")
        elif entity_id in applied.updated:
            print(f"updated {entity_id}")
        else:
            print(f"unchanged {entity_id}")


def _read_specs(name: str, model: type[Spec]) -> list[Spec]:
    """Every item validated before anything is applied; every problem printed."""
    try:
        document = json.loads(sys.stdin.read() if name == "-" else Path(name).read_text())
    except OSError as exc:
        _refuse(f"{name}: {exc.strerror or exc}")
    except json.JSONDecodeError as exc:
        _refuse(f"{name}: not JSON: {exc}")
    single = not isinstance(document, list)
    items = [document] if single else document
    specs: list[Spec] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        where = f"{name}: " if single else f"{name}: [{index}] "
        if not isinstance(item, dict):
            problems.append(f"{where}item: not a JSON object")
            continue
        try:
            specs.append(model.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                field = ".".join(str(part) for part in error["loc"]) or "item"
                problems.append(f"{where}{field}: {error['msg']}")
    if problems:
        _refuse("\n".join(problems))
    return specs


# ---------------------------------------------------------------------------- nodes, reads


def _deactivate(args: argparse.Namespace) -> None:
    try:
        with _ledger() as engine, transaction(engine) as session:
            done = configuration.deactivate_node(session, args.node_id, args.reason, actor())
    except DomainError as exc:
        _refuse(str(exc), NOT_FOUND)
    print(f"deactivated {args.node_id}" if done else f"unchanged {args.node_id}")


def _list_nodes(args: argparse.Namespace) -> None:
    with _ledger() as engine, Session(engine) as session:
        rows = session.exec(select(Node).order_by(col(Node.node_id))).all()
    for row in rows:
        sourcing = "in sourcing" if row.active else "out of sourcing"
        enabled = "" if row.enabled else " (deactivated)"
        print(
            f"{row.node_id:<24} {row.node_type:<9} {row.status:<8} {sourcing}{enabled}  {row.name}"
        )


def _show_node(args: argparse.Namespace) -> None:
    with _ledger() as engine, Session(engine) as session:
        row = session.get(Node, args.node_id)
        if row is None:
            _refuse(f"no node {args.node_id}", NOT_FOUND)
        print(configuration.node_spec(row).model_dump_json(indent=2))


def _list_channels(args: argparse.Namespace) -> None:
    with _ledger() as engine, Session(engine) as session:
        rows = session.exec(select(Channel).order_by(col(Channel.channel))).all()
        pools = {p.channel: p for p in session.exec(select(ChannelPool)).all()}
    for row in rows:
        values = configuration.stored_channel_values(row, pools.get(row.channel))
        limit = row.max_shipments_per_order
        shipments = f", at most {limit} shipment{'s' * (limit != 1)}" if limit else ""
        print(
            f"{row.channel:<24} {row.channel_type:<12} {_pool_text(values)}{shipments}  {row.name}"
        )


def _pool_text(values: dict[str, Any]) -> str:
    parts = []
    if values["pool_node_types"] is not None:
        parts.append("types " + "|".join(values["pool_node_types"]))
    if values["pool_node_ids"] is not None:
        parts.append("nodes " + "|".join(values["pool_node_ids"]))
    for name, kind in (("share_by_node_type", "share"), ("cap_by_node_type", "cap")):
        if values[name]:
            parts.append(f"{kind} " + "|".join(f"{k}={v}" for k, v in values[name].items()))
    return ", ".join(parts) or "every node"


def _list_carriers(args: argparse.Namespace) -> None:
    with _ledger() as engine, Session(engine) as session:
        rows = session.exec(
            select(CarrierServiceRow).order_by(
                col(CarrierServiceRow.carrier), col(CarrierServiceRow.service)
            )
        ).all()
    for row in rows:
        bands = "|".join(f"{b['max_km']:g}:{b['days']}" for b in row.transit_bands)
        print(
            f"{row.carrier + '/' + row.service:<32} cut-off {row.cutoff_time}  {bands}  {row.name}"
        )


def _changes(args: argparse.Namespace) -> None:
    with _ledger() as engine, Session(engine) as session:
        rows = changes_of(session, args.entity, args.entity_id, args.limit)
    for row in rows:
        print(
            f"{row.at:%Y-%m-%d %H:%M:%S}  {row.actor:<24} {row.action:<10} "
            f"{row.entity} {row.entity_id}  {json.dumps(row.changes, sort_keys=True)}"
        )
