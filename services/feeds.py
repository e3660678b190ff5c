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
catalogue does not have yet); a snapshot of the node puts the refused quantity right. The page
may carry purchase order and transfer lines too (`incoming`): they are checked as the push feed
checks them (services.incoming), applied in the same transaction as the deltas and the cursor,
and a refused one is named and logged in the same way.

Snapshots can carry hundreds of thousands of positions: the pushed lines are read where they
are (any objects with the fields of `SnapshotLine` / `PushedDelta`), never copied first.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import Session

from domain.availability import ChannelPoolRule
from domain.errors import DomainError, UnknownReference
from ledger import feeds
from ledger import incoming as incoming_ledger
from ledger.catalogue import known_nodes, known_skus
from ledger.db import transaction
from ledger.feeds import DeltaLine
from ledger.incoming import IncomingChange, IncomingOutcome
from ledger.tables import ChannelPool, IncomingKind, Node

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


class PulledIncoming(Protocol):
    """A purchase order or transfer line on a pulled page, as the source wrote it: nothing is
    bounded yet (contracts.activities.PulledIncomingLine)."""

    @property
    def event_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def node_id(self) -> str | None: ...
    @property
    def sku(self) -> str | None: ...
    @property
    def quantity(self) -> int | None: ...
    @property
    def expected_date(self) -> str | None: ...
    @property
    def from_node_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RefusedIncoming:
    """A pulled incoming line that was not applied, named the way the source system knows it."""

    event_id: str
    line: str  # "purchase_order PO-1 line 2"
    reason: str


@dataclass(frozen=True, slots=True)
class PulledPageOutcome:
    applied: int
    already_applied: bool
    refused: list[RefusedDelta] = field(default_factory=list)
    incoming_applied: int = 0
    refused_incoming: list[RefusedIncoming] = field(default_factory=list)


class FeedRefused(DomainError):
    """All or nothing, and some lines were refused: nothing was applied."""

    code = "feed_refused"

    def __init__(self, what: str, refused: list[RefusedLine]) -> None:
        self.what = what  # "positions" or "deltas"
        self.refused = refused
        listed = "; ".join(f"{what}[{r.line}]: {r.reason}" for r in refused[:LISTED])
        more = f" (and {len(refused) - LISTED} more)" if len(refused) > LISTED else ""
        super().__init__(f"nothing applied: {listed}{more}")


# How far ahead of this clock a feed's time (a snapshot's or delta's as-of, a receipt's
# received_at) may be: the sender's clock may run a little fast. Further ahead is a local time
# sent as UTC, and a snapshot dated in the future would make every later delta and receipt
# stale until the clock caught up.
CLOCK_SKEW = timedelta(minutes=5)


class FeedTimeAhead(DomainError):
    code = "invalid_request"

    def __init__(self, field: str, moment: datetime) -> None:
        self.field = field
        super().__init__(f"{field}: {moment.isoformat()} is ahead of this clock")


def is_ahead(moment: datetime, now: datetime | None = None) -> bool:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware > (now or datetime.now(UTC)) + CLOCK_SKEW


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
    UnknownReference if the node is unknown; FeedTimeAhead for an as-of time in the future;
    FeedRefused for unknown or repeated SKUs."""
    if is_ahead(as_of):
        raise FeedTimeAhead("as_of", as_of)
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
        elif is_ahead(d.as_of):
            refused.append(RefusedLine(line=i, reason=f"as_of {d.as_of.isoformat()} is ahead"))
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
    incoming: Sequence[PulledIncoming] = (),
) -> PulledPageOutcome:
    """A page pulled from a source system: its good deltas, its good incoming lines and the
    source's new cursor commit together. The cursor moves only from `cursor`, so a retried page
    finds it moved and applies nothing. Lines naming an unknown node or SKU, taking on hand
    below zero, incoming lines the push feed would refuse, and lines the database refuses (a
    value too long for its column, a NUL byte) are refused by name and logged; the cursor moves
    past them all the same."""
    unknown, good = _known_lines(engine, deltas)
    refused = [_refused(deltas[r.line], r.reason) for r in unknown]
    lines = [line for _, line in good]
    refused_incoming, changes = _checked_incoming(engine, incoming)
    try:
        with transaction(engine) as session:
            if not feeds.advance_cursor(session, source, cursor, next_cursor):
                return PulledPageOutcome(applied=0, already_applied=True)
            _lock_page(session, lines, changes)
            outcome = feeds.apply_deltas(session, source, lines)
            arrived = incoming_ledger.apply_changes(session, source, changes)
    except (DataError, IntegrityError):
        # Rare: find the lines the database refuses one by one, each in a savepoint.
        with transaction(engine) as session:
            if not feeds.advance_cursor(session, source, cursor, next_cursor):
                return PulledPageOutcome(applied=0, already_applied=True)
            _lock_page(session, lines, changes)
            outcome = feeds.DeltaOutcome()
            for line in sorted(lines, key=lambda ln: (ln.node_id, ln.sku)):  # as apply_deltas
                try:
                    with session.begin_nested():
                        one = feeds.apply_deltas(session, source, [line])
                except (DataError, IntegrityError) as exc:
                    refused.append(_refused(line, _database_refusal(exc)))
                    continue
                outcome.applied += one.applied
                outcome.refused += one.refused
                outcome.reasons.update(one.reasons)
            arrived = IncomingOutcome()
            for change in changes:  # already in (node, SKU) order
                try:
                    with session.begin_nested():
                        one_line = incoming_ledger.apply_changes(session, source, [change])
                except (DataError, IntegrityError) as exc:
                    refused_incoming.append(_refused_change(change, _database_refusal(exc)))
                    continue
                arrived.applied += one_line.applied
                arrived.reasons.update(one_line.reasons)
    refused += [
        _refused(line, outcome.reasons[line.event_id])
        for line in lines
        if line.event_id in outcome.reasons
    ]
    refused_incoming += [
        _refused_change(c, arrived.reasons[c.event_id])
        for c in changes
        if c.event_id in arrived.reasons
    ]
    for r in refused:
        log.warning(
            "feed %s: delta %r (node %r, SKU %r) not applied: %s; the cursor moves past it",
            source, r.event_id, r.node_id, r.sku, r.reason,
        )  # fmt: skip
    for ri in refused_incoming:
        log.warning(
            "feed %s: incoming line %r (%s) not applied: %s; the cursor moves past it",
            source, ri.event_id, ri.line, ri.reason,
        )  # fmt: skip
    return PulledPageOutcome(
        applied=outcome.applied,
        already_applied=False,
        refused=refused,
        incoming_applied=arrived.applied,
        refused_incoming=refused_incoming,
    )


def _lock_page(session: Session, lines: list[DeltaLine], changes: list[IncomingChange]) -> None:
    """A page with incoming lines writes to positions through two batch functions: take every
    position's lock first, in (node, SKU) order, so the transaction never waits on an order in
    the opposite order. A page of deltas alone is locked by apply_deltas as it goes."""
    if changes:
        keys = {(ln.node_id, ln.sku) for ln in lines} | {(c.node_id, c.sku) for c in changes}
        incoming_ledger.open_and_lock(session, keys)


def _database_refusal(exc: DataError | IntegrityError) -> str:
    why = str(exc.orig).splitlines()[0][:200] if exc.orig else type(exc).__name__
    return f"refused by the database: {why}"


# The push feed's bounds (api.schemas.IncomingLinePush), which a pulled page has not been held to.
_MAX_UNITS = 1_000_000
_MAX_LINE = 1_000_000
_TEXT_LIMITS = {"event_id": 200, "reference": 120, "node_id": 64, "sku": 64, "from_node_id": 64}


@dataclass(frozen=True, slots=True)
class _IncomingLine:
    """A pulled incoming line within the push feed's bounds, its date parsed: what
    services.incoming checks against the network."""

    event_id: str
    action: str
    kind: str
    reference: str
    line: int
    node_id: str | None
    sku: str | None
    quantity: int | None
    expected_date: date | None
    from_node_id: str | None


def _checked_incoming(
    engine: Engine, pulled: Sequence[PulledIncoming]
) -> tuple[list[RefusedIncoming], list[IncomingChange]]:
    """The pulled incoming lines the push feed would take, as changes in (node, SKU) order
    (apply_changes' order), and the others refused by name: first what the push feed's schema
    bounds, then what services.incoming checks (unknown node, SKU or line, a transfer without
    its origin, a new line without its date)."""
    # services.incoming builds on this module (FeedMode, RefusedLine): imported here, not above.
    from services.incoming import _known_changes

    refused: list[RefusedIncoming] = []
    bounded: list[_IncomingLine] = []
    for ln in pulled:
        checked = _bounded(ln)
        if isinstance(checked, str):
            refused.append(RefusedIncoming(ln.event_id, _name(ln), checked))
        else:
            bounded.append(checked)
    if not bounded:
        return refused, []
    unknown, good = _known_changes(engine, bounded)
    refused += [RefusedIncoming(bounded[r.line].event_id, _name(bounded[r.line]), r.reason)
                for r in unknown]  # fmt: skip
    return refused, sorted((c for _, c in good), key=lambda c: (c.node_id, c.sku))


def _bounded(ln: PulledIncoming) -> _IncomingLine | str:
    """The line with its date parsed, or why the push feed's schema would refuse it."""
    for name, limit in _TEXT_LIMITS.items():
        value = getattr(ln, name)
        if value is None:
            continue
        if name in ("event_id", "reference") and not value:
            return f"{name} is empty"
        if len(value) > limit:
            return f"{name} is longer than {limit} characters"
        if "\x00" in value:
            return f"{name} holds a NUL character"
    if ln.action not in ("upsert", "cancel"):
        return f"action {ln.action!r} is neither upsert nor cancel"
    if ln.kind not in set(IncomingKind):
        return f"kind {ln.kind!r} is not one of {', '.join(IncomingKind)}"
    if not 1 <= ln.line <= _MAX_LINE:
        return f"line number {ln.line} is not between 1 and {_MAX_LINE}"
    if ln.quantity is not None and not 1 <= ln.quantity <= _MAX_UNITS:
        return f"quantity {ln.quantity} is not between 1 and {_MAX_UNITS}"
    try:
        due = date.fromisoformat(ln.expected_date) if ln.expected_date is not None else None
    except ValueError:
        return f"expected_date {ln.expected_date!r} is not a date (YYYY-MM-DD)"
    return _IncomingLine(
        ln.event_id, ln.action, ln.kind, ln.reference, ln.line, ln.node_id, ln.sku,
        ln.quantity, due, ln.from_node_id,
    )  # fmt: skip


def _name(ln: PulledIncoming | _IncomingLine) -> str:
    return f"{ln.kind} {ln.reference} line {ln.line}"


def _refused_change(change: IncomingChange, reason: str) -> RefusedIncoming:
    return RefusedIncoming(change.event_id, str(change.key), reason)


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
