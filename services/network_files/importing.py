"""Importing a folder of network files (or one file, through the API) as one unit of work.

Every file is read and validated before anything is written, and every refused line of every
file is collected: any refusal and nothing at all is applied (NetworkFilesRefused lists them all).
Then the files are applied in `KINDS` order in one transaction (a later file may name what an
earlier one created), through the same services as the API: a refusal found while applying
rolls back every file. `check=True` runs it all and rolls back."""

import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from domain.configuration import Applied, ChannelSpec, Spec
from domain.errors import DomainError
from domain.network_files import (
    KINDS,
    Kind,
    ParsedFile,
    Refusal,
    StockRows,
    file_kind,
    parse_file,
    parse_stock,
    where,
)
from ledger.catalogue import known_nodes
from ledger.db import transaction
from services.catalogue import apply_skus
from services.configuration import apply_carrier_services, apply_channels, apply_nodes
from services.network_files.stock import apply_stock, refuse_unknown_references

LISTED = 50  # refused lines in the error's message; `refused` has them all

_APPLY: dict[Kind, Callable[[Session, Sequence[Any], str], Applied]] = {
    Kind.CARRIERS: apply_carrier_services,
    Kind.NODES: apply_nodes,
    Kind.SKUS: apply_skus,
    Kind.CHANNELS: apply_channels,
}


@dataclass
class FileOutcome:
    name: str
    created: int
    updated: int
    unchanged: int
    seconds: float = field(default=0.0, compare=False)  # reading and applying it (benchmarks)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )


@dataclass
class ImportOutcome:
    files: list[FileOutcome] = field(default_factory=list)
    applied: bool = True  # False: checked only (check=True), nothing written

    @property
    def changed(self) -> bool:
        return any(f.changed for f in self.files)


class NetworkFilesRefused(DomainError):
    """Some lines were refused: nothing was applied. `refused` names every one."""

    code = "network_files_refused"

    def __init__(self, refused: list[Refusal]) -> None:
        self.refused = [str(r) for r in refused]
        listed = "; ".join(self.refused[:LISTED])
        more = f" (and {len(refused) - LISTED} more)" if len(refused) > LISTED else ""
        super().__init__(f"nothing applied: {listed}{more}")


class _CheckedOnly(Exception):
    """Raised inside the transaction to roll a --check back."""


Parsed = ParsedFile | StockRows


@dataclass
class _Batch:
    """The files to apply, in order, and every refusal found so far."""

    files: list[Parsed] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    read_seconds: dict[str, float] = field(default_factory=dict)
    # The folder's names were refused (a kind given twice): references to that kind cannot
    # be checked, so only each file's own lines are.
    names_refused: bool = False


def network_files(folder: Path) -> tuple[list[tuple[str, Path]], list[Refusal]]:
    """The folder's network files in apply order, and the refusals of its names: a kind given
    both as .csv and .json, and .csv / .json files of no kind. Other files are ignored."""
    if not folder.is_dir():
        return [], [Refusal(str(folder), "not a folder")]
    refused: list[Refusal] = []
    found: dict[Kind, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".csv", ".json") or path.name.startswith("."):
            continue
        kind = file_kind(path.name)
        if kind is None:
            refused.append(
                Refusal(
                    path.name,
                    "not a network file: the files are "
                    + ", ".join(str(k) for k in KINDS)
                    + " (.csv or .json)",
                )
            )
            continue
        found.setdefault(kind[0], []).append(path)
    files = []
    for kind in KINDS:
        paths = found.get(kind, [])
        if len(paths) > 1:
            refused.append(Refusal(kind, f"both {paths[0].name} and {paths[1].name}: keep one"))
        elif paths:
            files.append((paths[0].name, paths[0]))
    if not files and not refused:
        refused.append(Refusal(str(folder), "no network files (" + ", ".join(KINDS) + ")"))
    return files, refused


def import_folder(engine: Engine, folder: Path, actor: str, check: bool = False) -> ImportOutcome:
    names, refused = network_files(folder)
    batch = _Batch(refused=refused, names_refused=bool(refused))
    for name, path in names:
        with path.open(encoding="utf-8-sig", newline="") as text:
            _read(batch, name, text)
    return _import(engine, batch, actor, check)


def import_file(
    engine: Engine, name: str, data: bytes, actor: str, check: bool = False
) -> FileOutcome:
    """One file (the API): what it names must be in the database already."""
    if file_kind(name) is None:
        raise NetworkFilesRefused(
            [Refusal(name, "not a network file: " + ", ".join(KINDS) + " (.csv or .json)")]
        )
    batch = _Batch()
    _read(batch, name, io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""))
    outcome = _import(engine, batch, actor, check)
    return outcome.files[0]


def _read(batch: _Batch, name: str, text: Iterable[str]) -> None:
    kind = file_kind(name)
    assert kind is not None
    started = time.perf_counter()
    parsed: Parsed = parse_stock(name, text) if kind[0] == Kind.STOCK else parse_file(name, text)
    batch.read_seconds[name] = time.perf_counter() - started
    batch.files.append(parsed)
    batch.refused += parsed.refused


def _kind(parsed: Parsed) -> Kind:
    return Kind.STOCK if isinstance(parsed, StockRows) else parsed.kind


def _import(engine: Engine, batch: _Batch, actor: str, check: bool) -> ImportOutcome:
    if batch.names_refused:
        raise NetworkFilesRefused(_in_order(batch))
    with Session(engine) as session:
        _refuse_unknown_references(session, batch)
        if batch.refused:
            # Refused anyway: say now too which stock lines would take on hand below what is
            # reserved or held, so one round of corrections is enough.
            for parsed in batch.files:
                if isinstance(parsed, StockRows):
                    batch.refused += apply_stock(session, parsed, actor, write=False).refused
            raise NetworkFilesRefused(_in_order(batch))
    outcome = ImportOutcome(applied=not check)
    try:
        with transaction(engine) as session:
            for parsed in batch.files:
                started = time.perf_counter()
                applied = _apply(session, parsed, actor, check, batch)
                applied.seconds = batch.read_seconds[applied.name] + time.perf_counter() - started
                outcome.files.append(applied)
            if batch.refused:
                raise NetworkFilesRefused(_in_order(batch))
            if check:
                raise _CheckedOnly
    except _CheckedOnly:
        pass
    return outcome


def _apply(session: Session, parsed: Parsed, actor: str, check: bool, batch: _Batch) -> FileOutcome:
    if isinstance(parsed, StockRows):
        stock = apply_stock(session, parsed, actor, write=not check)
        batch.refused += stock.refused
        return FileOutcome(parsed.name, stock.created, stock.updated, stock.unchanged)
    try:
        applied = _APPLY[parsed.kind](session, parsed.specs, actor)
    except DomainError as exc:  # found while applying; nothing stays written
        batch.refused.append(Refusal(parsed.name, str(exc)))
        return FileOutcome(parsed.name, 0, 0, 0)
    return FileOutcome(parsed.name, len(applied.created), len(applied.updated), applied.unchanged)


def _refuse_unknown_references(session: Session, batch: _Batch) -> None:
    """Channels' pool nodes and stock's nodes and SKUs must be in the database or in a file
    applied before theirs."""
    defined: dict[Kind, tuple[str, set[str]]] = {}
    for parsed in batch.files:
        if isinstance(parsed, StockRows):
            nodes_name, nodes = defined.get(Kind.NODES, ("an earlier file", set()))
            skus_name, skus = defined.get(Kind.SKUS, ("an earlier file", set()))
            batch.refused += refuse_unknown_references(
                session, parsed, nodes, skus, nodes_name, skus_name
            )
            continue
        if parsed.kind == Kind.CHANNELS:
            batch.refused += _unknown_pool_nodes(session, parsed, defined.get(Kind.NODES))
        defined[parsed.kind] = (parsed.name, parsed.ids())


def _unknown_pool_nodes(
    session: Session, parsed: ParsedFile, nodes: tuple[str, set[str]] | None
) -> list[Refusal]:
    specs: list[Spec] = parsed.specs
    named = {n for s in specs if isinstance(s, ChannelSpec) for n in s.pool_node_ids or []}
    name, defined = nodes or ("the nodes file", set())
    known = known_nodes(session, named) | defined
    refused = []
    for spec, place in zip(specs, parsed.places, strict=True):
        assert isinstance(spec, ChannelSpec)
        for node_id in spec.pool_node_ids or []:
            if node_id not in known:
                refused.append(
                    Refusal(
                        where(parsed.name, parsed.fmt, place),
                        f"pool_node_ids: unknown node '{node_id}' (not in the database nor {name})",
                    )
                )
    return refused


def _in_order(batch: _Batch) -> list[Refusal]:
    """By file in apply order (the folder's own refusals first), then by line."""
    rank = {parsed.name: i for i, parsed in enumerate(batch.files)}

    def key(refusal: Refusal) -> tuple[int, int]:
        name, _, place = refusal.where.partition(":")
        number = place.strip("[]")
        return rank.get(name, -1), int(number) if number.isdigit() else -1

    return sorted(batch.refused, key=key)
