"""Writing the network back as files: the five kinds, sorted by id, in the import's format, so
that importing an export changes nothing and export -> import elsewhere -> export is identical."""

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.configuration import Spec
from domain.network_files import KINDS, FileFormat, Kind, sorted_specs, stock_specs, write_rows
from ledger.tables import CarrierServiceRow, Channel, ChannelPool, Node, Sku, StockPosition
from services.catalogue import sku_spec
from services.configuration import carrier_service_spec, channel_spec, node_spec

STREAM_ROWS = 20_000  # stock positions fetched per round trip while writing


class ExportRefused(ValueError):
    """The folder already holds the other format's files: an import would refuse both."""


def export_folder(engine: Engine, folder: Path, fmt: FileFormat = FileFormat.CSV) -> list[str]:
    """Writes `<kind>.<fmt>` for the five kinds into `folder` (created if absent); returns the
    names written."""
    folder.mkdir(parents=True, exist_ok=True)
    other = FileFormat.JSON if fmt == FileFormat.CSV else FileFormat.CSV
    clashing = [f"{kind}.{other}" for kind in KINDS if (folder / f"{kind}.{other}").exists()]
    if clashing:
        raise ExportRefused(
            f"{folder} holds {', '.join(clashing)}: with the {fmt} files beside them an import "
            "would refuse both; export into an empty folder"
        )
    written = []
    for kind in KINDS:
        name = f"{kind}.{fmt}"
        partial = folder / f".{name}.partial"
        with partial.open("w", encoding="utf-8", newline="") as out:
            export_file(engine, kind, fmt, out)
        partial.replace(folder / name)  # a reader never sees half a file
        written.append(name)
    return written


def export_file(engine: Engine, kind: Kind, fmt: FileFormat, out: TextIO) -> None:
    with Session(engine) as session:
        write_rows(kind, fmt, _specs(session, kind), out)  # type: ignore[arg-type]


def _specs(session: Session, kind: Kind) -> Iterator[Spec] | list[Spec]:
    if kind == Kind.STOCK:
        return stock_specs(_positions(session))
    if kind == Kind.NODES:
        specs: list[Spec] = [node_spec(row) for row in session.exec(select(Node))]
    elif kind == Kind.SKUS:
        specs = [sku_spec(row) for row in session.exec(select(Sku))]
    elif kind == Kind.CHANNELS:
        pools = {pool.channel: pool for pool in session.exec(select(ChannelPool))}
        specs = [channel_spec(row, pools.get(row.channel)) for row in session.exec(select(Channel))]
    else:
        specs = [carrier_service_spec(row) for row in session.exec(select(CarrierServiceRow))]
    return sorted_specs(kind, specs)


def _positions(session: Session) -> Iterator[tuple[str, str, int, int | None]]:
    """Every position in (node_id, sku) order by code point, as Python sorts: PostgreSQL's
    default collation would order by language rules and differ from SQLite's."""
    node_id, sku = col(StockPosition.node_id), col(StockPosition.sku)
    if session.get_bind().dialect.name == "postgresql":
        node_id, sku = node_id.collate("C"), sku.collate("C")
    query = (
        select(
            StockPosition.node_id,
            StockPosition.sku,
            StockPosition.on_hand,
            StockPosition.safety_override,
        )
        .order_by(node_id, sku)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for row in session.execute(query):
        yield row[0], row[1], row[2], row[3]
