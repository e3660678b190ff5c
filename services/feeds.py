"""Stock feeds as units of work: a pushed snapshot or batch of deltas (line refusal and the
all-or-nothing policy), a page of deltas pulled from a source system, and a channel's pool.

A feed with a bad line applies nothing and is refused naming every refused line (FeedRefused,
`FeedMode.ALL_OR_NOTHING`, the default), or with `FeedMode.PARTIAL` applies the good lines and
reports the refused ones. Unknown nodes and SKUs are refused before the write transaction; a
delta that would take on hand below zero, or below what is reserved or held there, is found
inside it, and refusing then rolls the whole batch back. A refused delta's event id is not
recorded, in either mode: the source may send that event again, corrected.

A page pulled from a source system (`apply_pulled_page`) has no caller to answer: its good
lines are applied, the refused ones are logged by name (source, event id, node, SKU, why) and
returned, and the cursor moves past the page. Keeping the cursor on the page instead would
freeze every later delta of that source behind one line only a person can fix (a SKU the
catalogue does not have yet); a snapshot of the node puts the refused quantity right.

Snapshots can carry hundreds of thousands of positions: the pushed lines are read where they
are (any objects with the fields of `SnapshotLine` / `PushedDelta`), never copied first.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import Session

from domain.availability import ChannelPoolRule
from domain.errors import DomainError, UnknownReference
from ledger import feeds
from ledger.catalogue import known_nodes, known_skus
from ledger.db import transaction
from ledger.feeds import DeltaLine
from ledger.tables import ChannelPool, Node

log = logging.getLogger("opendom.feeds")

# Refused lines named in FeedRefused's message; the rest are counted.
LISTED = 50


class FeedMode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    PARTIAL = "partial"


class SnapshotLine(Protocol):
    @property
    def sku(self) -> str: ...
    @property
    def on_hand(self) -> int: ...


class PushedDelta(Protocol):
    @property
    def event_id(self) -> str: ...
    @property
    def node_id(self) -> str: ...
    @property
    def sku(self) -> str: ...
    @property
    def delta(self) -> int: ...
    @property
    def as_of(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class RefusedLine:
    line: int  # its index in the feed
    reason: str


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    applied: int
    replayed: int = 0
    stale: int = 0
    refused: list[RefusedLine] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RefusedDelta:
    """A pulled delta that was not applied, named the way the source system knows it."""

    event_id: str
    node_id: str
    sku: str
    reason: str


@dataclass(frozen=True, slots=True)
class PulledPageOutcome:
    applied: int
    already_applied: bool
    refused: list[RefusedDelta] = field(default_factory=list)


class FeedRefused(DomainError):
    """All or nothing, and some lines were refused: nothing was applied."""

    code = "feed_refused"

    def __init__(self, what: str, refused: list[RefusedLine]) -> None:
        self.what = what  # "positions" or "deltas"
        self.refused = refused
        listed = "; ".join(f"{what}[{r.line}]: {r.reason}" for r in refused[:LISTED])
        more = f" (and {len(refused) - LISTED} more)" if len(refused) > LISTED else ""
        super().__init__(f"nothing applied: {listed}{more}")


def _refuse_or_keep(refused: list[RefusedLine], mode: FeedMode, what: str) -> None:
    if refused and mode == FeedMode.ALL_OR_NOTHING:
        raise FeedRefused(what, refused)


def push_snapshot(
    engine: Engine,
    source: str,
    event_id: str,
    node_id: str,
    as_of: datetime,
    positions: Sequence[SnapshotLine],
    mode: FeedMode = FeedMode.ALL_OR_NOTHING,
) -> FeedOutcome:
    """Absolute on hand for every SKU at one node as of a time; SKUs it omits go to 0.
    UnknownReference if the node is unknown; FeedRefused for unknown or repeated SKUs."""
    with Session(engine) as session:
        if session.get(Node, node_id) is None:
            raise UnknownReference("node_id", [node_id])
        known = known_skus(session, {p.sku for p in positions})
    refused: list[RefusedLine] = []
    seen: set[str] = set()
    on_hand: dict[str, int] = {}
    for i, p in enumerate(positions):
        if p.sku not in known:
            refused.append(RefusedLine(line=i, reason=f"unknown SKU {p.sku}"))
        elif p.sku in seen:
            refused.append(RefusedLine(line=i, reason=f"SKU {p.sku} appears twice"))
        else:
            on_hand[p.sku] = p.on_hand
        seen.add(p.sku)
    _refuse_or_keep(refused, mode, "positions")
    with transaction(engine) as tx:
        outcome = feeds.apply_snapshot(tx, source, event_id, node_id, as_of, on_hand)
    return FeedOutcome(
        applied=0 if outcome.replayed else outcome.changed + outcome.unchanged + outcome.created,
        replayed=int(outcome.replayed),
        stale=outcome.stale_skus,
        refused=refused,
    )


def _known_lines(
    engine: Engine, deltas: Sequence[PushedDelta]
) -> tuple[list[RefusedLine], list[tuple[int, DeltaLine]]]:
    """Lines naming a node or SKU we do not have are refused (their position could not be
    opened); the others, with their index in the feed."""
    with Session(engine) as session:
        nodes = known_nodes(session, {d.node_id for d in deltas})
        skus = known_skus(session, {d.sku for d in deltas})
    refused: list[RefusedLine] = []
    good: list[tuple[int, DeltaLine]] = []
    for i, d in enumerate(deltas):
        if d.node_id not in nodes:
            refused.append(RefusedLine(line=i, reason=f"unknown node {d.node_id}"))
        elif d.sku not in skus:
            refused.append(RefusedLine(line=i, reason=f"unknown SKU {d.sku}"))
        else:
            good.append((i, DeltaLine(d.event_id, d.node_id, d.sku, d.delta, d.as_of)))
    return refused, good


def push_deltas(
    engine: Engine,
    source: str,
    deltas: Sequence[PushedDelta],
    mode: FeedMode = FeedMode.ALL_OR_NOTHING,
) -> FeedOutcome:
    """Adjust on hand by a quantity, each with the source's event id and as-of time.
    FeedRefused for unknown nodes or SKUs, and for deltas that would take on hand below zero
    or below what is reserved or held."""
    refused, good = _known_lines(engine, deltas)
    _refuse_or_keep(refused, mode, "deltas")
    with transaction(engine) as tx:
        outcome = feeds.apply_deltas(tx, source, [line for _, line in good])
        refused += [
            RefusedLine(line=i, reason=outcome.reasons[ln.event_id])
            for i, ln in good
            if ln.event_id in outcome.reasons
        ]
        # all or nothing: raising here rolls the whole batch back
        _refuse_or_keep(refused, mode, "deltas")
    return FeedOutcome(
        applied=outcome.applied,
        replayed=len(outcome.replayed),
        stale=len(outcome.stale),
        refused=sorted(refused, key=lambda r: r.line),
    )


def apply_pulled_page(
    engine: Engine,
    source: str,
    cursor: str | None,
    next_cursor: str | None,
    deltas: list[DeltaLine],
) -> PulledPageOutcome:
    """A page pulled from a source system: its good deltas and the source's new cursor commit
    together. The cursor moves only from `cursor`, so a retried page finds it moved and
    applies nothing. Lines naming an unknown node or SKU, taking on hand below zero, or that
    the database refuses (a value too long for its column, a NUL byte) are refused by name and
    logged; the cursor moves past them all the same."""
    unknown, good = _known_lines(engine, deltas)
    refused = [_refused(deltas[r.line], r.reason) for r in unknown]
    lines = [line for _, line in good]
    try:
        with transaction(engine) as session:
            if not feeds.advance_cursor(session, source, cursor, next_cursor):
                return PulledPageOutcome(applied=0, already_applied=True)
            outcome = feeds.apply_deltas(session, source, lines)
    except (DataError, IntegrityError):
        # Rare: find the lines the database refuses one by one, each in a savepoint.
        with transaction(engine) as session:
            if not feeds.advance_cursor(session, source, cursor, next_cursor):
                return PulledPageOutcome(applied=0, already_applied=True)
            outcome = feeds.DeltaOutcome()
            for line in sorted(lines, key=lambda ln: (ln.node_id, ln.sku)):  # as apply_deltas
                try:
                    with session.begin_nested():
                        one = feeds.apply_deltas(session, source, [line])
                except (DataError, IntegrityError) as exc:
                    why = str(exc.orig).splitlines()[0][:200] if exc.orig else type(exc).__name__
                    reason = f"refused by the database: {why}"
                    refused.append(_refused(line, reason))
                    continue
                outcome.applied += one.applied
                outcome.refused += one.refused
                outcome.reasons.update(one.reasons)
    refused += [
        _refused(line, outcome.reasons[line.event_id])
        for line in lines
        if line.event_id in outcome.reasons
    ]
    for r in refused:
        log.warning(
            "feed %s: delta %r (node %r, SKU %r) not applied: %s; the cursor moves past it",
            source, r.event_id, r.node_id, r.sku, r.reason,
        )  # fmt: skip
    return PulledPageOutcome(applied=outcome.applied, already_applied=False, refused=refused)


def _refused(line: PushedDelta, reason: str) -> RefusedDelta:
    return RefusedDelta(line.event_id, line.node_id, line.sku, reason)


def set_channel_pool(engine: Engine, rule: ChannelPoolRule) -> None:
    """Which nodes a channel sells from, and a share (0..1) or cap per node of a node type:
    the channel's pool replaced as a whole."""
    with transaction(engine) as tx:
        row = tx.get(ChannelPool, rule.channel) or ChannelPool(channel=rule.channel)
        row.node_types = rule.node_types
        row.node_ids = rule.node_ids
        row.share_by_node_type = rule.share_by_node_type
        row.cap_by_node_type = rule.cap_by_node_type
        tx.add(row)
