"""Incoming stock: purchase order lines from suppliers and transfers in transit between nodes.

- A line is known by (kind, reference, line) whoever sends it: the ERP creates purchase order
  PO-1 line 1, the WMS of the node it arrives at receives against the same name.
- Its open units (quantity less received, while the line is open) are in the `incoming` counter
  of the (node, SKU) position it arrives at, and only ever through movements (ledger.positions):
  creating, changing or cancelling a line moves incoming (kind `incoming`); a receipt moves units
  from incoming to on hand in ONE movement (kind `receipt`, both deltas), so reconcile rebuilds
  incoming like every other counter and no reader ever sees the units in both or neither.
- Incoming is never part of ATP: what can be sold now is unchanged until the goods arrive.
- A line's node and SKU never change (cancel it and send a new one): a receipt read before its
  transaction can rely on them, and lock the position before the line.
- Locks are taken positions first, in (node, SKU) order as every writer takes them
  (ledger.stock), then lines: a receipt batch, an incoming batch and an order never wait on each
  other in opposite orders on PostgreSQL.
- A receipt dated at or before the position's last full snapshot was counted by that snapshot:
  it closes the incoming units but adds nothing to on hand (as a stale delta is ignored).
- A transfer's origin is not touched here: its WMS reports the units leaving (a delta or a
  snapshot), and they are in transit, in the destination's incoming, until received.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import case, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from ledger.availability import lock_positions
from ledger.feeds import _first_time, _forget, utc
from ledger.positions import INCOMING, move_stock
from ledger.stock import open_position
from ledger.tables import (
    IncomingLine,
    IncomingStatus,
    MovementKind,
    Node,
    StockPosition,
    utcnow,
)


class IncomingAction:
    UPSERT = "upsert"  # create the line, or change its quantity, date or origin
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class LineKey:
    kind: str
    reference: str
    line: int

    def __str__(self) -> str:
        return f"{self.kind} {self.reference} line {self.line}"


@dataclass(frozen=True, slots=True)
class IncomingChange:
    event_id: str
    action: str  # IncomingAction
    key: LineKey
    node_id: str
    sku: str
    quantity: int = 0
    expected_date: date | None = None
    from_node_id: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """Goods received against a line, at the node and of the SKU the line names."""

    event_id: str
    key: LineKey
    node_id: str
    sku: str
    quantity: int
    received_at: datetime


@dataclass
class IncomingOutcome:
    applied: int = 0
    replayed: list[str] = field(default_factory=list)
    # receipts already counted by a later snapshot: incoming closed, on hand untouched
    stale: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # refused, by event id
    received_skus: set[str] = field(default_factory=set)  # SKUs whose on hand went up


_Item = TypeVar("_Item", IncomingChange, Receipt)


class _Refused(Exception):
    """A line refused inside its savepoint: what it changed is rolled back."""


def lines_by_key(session: Session, keys: Iterable[LineKey]) -> dict[LineKey, IncomingLine]:
    """The stored lines of these keys (one query per 500 keys; absent keys are unknown)."""
    wanted = sorted(set(keys), key=lambda k: (k.kind, k.reference, k.line))
    found: dict[LineKey, IncomingLine] = {}
    for start in range(0, len(wanted), 500):
        chunk = set(wanted[start : start + 500])
        refs = sorted({k.reference for k in chunk})
        for row in session.exec(  # type: ignore[call-overload]
            select(IncomingLine).where(col(IncomingLine.reference).in_(refs))
        ).scalars():
            key = LineKey(row.kind, row.reference, row.line)
            if key in chunk:
                found[key] = row
    return found


def apply_changes(
    session: Session, source: str, changes: Sequence[IncomingChange]
) -> IncomingOutcome:
    """Create, change or cancel incoming lines, each once by (source, event id). A refused
    change (a quantity below what was received, a closed line, a new node or SKU) changes
    nothing and its event id is not recorded: the source may send it again corrected."""
    outcome = IncomingOutcome()
    ordered = _lock_in_order(session, changes)
    for change in ordered:
        if not _first_time(session, source, change.event_id):
            outcome.replayed.append(change.event_id)
            continue
        try:
            with session.begin_nested():
                _apply_change(session, source, change)
            outcome.applied += 1
        except _Refused as refused:
            _forget(session, source, change.event_id)
            outcome.reasons[change.event_id] = str(refused)
    return outcome


def apply_receipts(session: Session, source: str, receipts: Sequence[Receipt]) -> IncomingOutcome:
    """Move received units from incoming to on hand and count them on their line, each once by
    (source, event id). Receiving more than a line has open is refused naming the line."""
    outcome = IncomingOutcome()
    ordered = _lock_in_order(session, receipts)
    # read under the position locks: a snapshot committing meanwhile is seen or waits
    snapshot_of = _snapshot_times(session, {(r.node_id, r.sku) for r in receipts})
    for receipt in ordered:
        if not _first_time(session, source, receipt.event_id):
            outcome.replayed.append(receipt.event_id)
            continue
        counted = snapshot_of.get((receipt.node_id, receipt.sku))
        stale = counted is not None and utc(receipt.received_at) <= utc(counted)
        try:
            with session.begin_nested():
                _receive(session, source, receipt, stale)
        except _Refused as refused:
            _forget(session, source, receipt.event_id)
            outcome.reasons[receipt.event_id] = str(refused)
            continue
        outcome.applied += 1
        if stale:
            outcome.stale.append(receipt.event_id)
        else:
            outcome.received_skus.add(receipt.sku)
    return outcome


def open_and_lock(session: Session, keys: Iterable[tuple[str, str]]) -> None:
    """Open these (node, SKU) positions where missing and lock them in (node, SKU) order. A
    transaction that writes through more than one batch function (a pulled page's deltas, then
    its incoming lines) takes every lock first, so it too takes them in the order every writer
    does, never (B, x) before (A, y)."""
    wanted = sorted(set(keys))
    _open_missing_positions(session, wanted)
    lock_positions(session, wanted)


def _lock_in_order(session: Session, items: Sequence[_Item]) -> list[_Item]:
    """Open the positions the items arrive at (a SKU never stocked there yet), lock them in
    (node, SKU) order, and return the items in that order (a line's own changes keep the order
    they came in)."""
    keys = sorted({(i.node_id, i.sku) for i in items})
    _open_missing_positions(session, keys)
    lock_positions(session, keys)
    return sorted(items, key=lambda i: (i.node_id, i.sku))


def _open_missing_positions(session: Session, keys: list[tuple[str, str]]) -> None:
    existing = {
        (n, s)
        for n, s in session.execute(
            select(StockPosition.node_id, StockPosition.sku).where(
                tuple_(col(StockPosition.node_id), col(StockPosition.sku)).in_(keys)
            )
        )
    } if keys else set()  # fmt: skip
    for node_id, sku in keys:
        if (node_id, sku) in existing:
            continue
        try:
            with session.begin_nested():
                # opened with the node's effective safety stock, no movement (nothing on hand)
                open_position(session, node_id, sku, 0)
        except IntegrityError:
            pass  # a concurrent writer opened it first: it is there either way


def _snapshot_times(
    session: Session, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    found: dict[tuple[str, str], datetime] = {}
    for node_id in sorted({n for n, _ in keys}):
        skus = [s for n, s in keys if n == node_id]
        for sku, as_of in session.execute(
            select(StockPosition.sku, StockPosition.snapshot_as_of).where(
                col(StockPosition.node_id) == node_id, col(StockPosition.sku).in_(skus)
            )
        ):
            if as_of is not None:
                found[(node_id, sku)] = as_of
    return found


def _stored(session: Session, key: LineKey) -> IncomingLine | None:
    return session.exec(  # type: ignore[call-overload]
        select(IncomingLine).where(
            col(IncomingLine.kind) == key.kind,
            col(IncomingLine.reference) == key.reference,
            col(IncomingLine.line) == key.line,
        )
    ).scalar_one_or_none()


def _apply_change(session: Session, source: str, change: IncomingChange) -> None:
    line = _stored(session, change.key)
    cause = f"{source}:{change.event_id}"
    if line is None:
        if change.action == IncomingAction.CANCEL:
            raise _Refused(f"no {change.key} to cancel")
        assert change.expected_date is not None  # checked at the edge
        session.add(
            IncomingLine(
                kind=change.key.kind, reference=change.key.reference, line=change.key.line,
                node_id=change.node_id, from_node_id=change.from_node_id, sku=change.sku,
                quantity=change.quantity, expected_date=change.expected_date, source=source,
            )
        )  # fmt: skip
        session.flush()  # a concurrent create of the same line fails here, in the savepoint
        _move_incoming(session, change, change.quantity, cause)
        return
    if line.status != IncomingStatus.OPEN:
        raise _Refused(f"{change.key} is {line.status}")
    if (line.node_id, line.sku) != (change.node_id, change.sku):
        raise _Refused(
            f"{change.key} arrives at {line.node_id} with {line.sku}; cancel it and send a new"
            " line to change its node or SKU"
        )
    open_before = line.quantity - line.received
    if change.action == IncomingAction.CANCEL:
        line.status = IncomingStatus.CANCELLED
        moved = -open_before
    else:
        if change.quantity < line.received:
            raise _Refused(
                f"{change.key}: quantity {change.quantity} is below the {line.received}"
                " already received"
            )
        moved = change.quantity - line.quantity
        line.quantity = change.quantity
        line.expected_date = change.expected_date or line.expected_date
        line.from_node_id = change.from_node_id or line.from_node_id
        if line.quantity == line.received:
            line.status = IncomingStatus.RECEIVED  # cut down to what already arrived
    line.updated_at = utcnow()
    session.add(line)
    session.flush()
    _move_incoming(session, change, moved, cause)


def _move_incoming(session: Session, change: IncomingChange, units: int, cause: str) -> None:
    if units == 0:
        return
    moved = move_stock(
        session, change.node_id, change.sku, MovementKind.INCOMING, cause, d_incoming=units,
        condition=INCOMING + units >= 0,
    )  # fmt: skip
    if not moved:  # the counter disagrees with the lines: reconcile names it
        raise _Refused(f"incoming of {change.sku} at {change.node_id} would go below 0")


def _receive(session: Session, source: str, receipt: Receipt, stale: bool) -> None:
    table = IncomingLine.__table__  # type: ignore[attr-defined]
    new_received = table.c.received + receipt.quantity
    # Conditional, like every counter: two receipts of one line cannot both pass the check.
    result = session.connection().execute(
        update(table)
        .where(
            table.c.kind == receipt.key.kind,
            table.c.reference == receipt.key.reference,
            table.c.line == receipt.key.line,
            table.c.status == IncomingStatus.OPEN,
            new_received <= table.c.quantity,
        )
        .values(
            received=new_received,
            status=case(
                (new_received == table.c.quantity, IncomingStatus.RECEIVED.value),
                else_=table.c.status,
            ),
            updated_at=utcnow(),
        )
    )
    if result.rowcount != 1:
        raise _Refused(_why_not_received(session, receipt))
    moved = move_stock(
        session, receipt.node_id, receipt.sku, MovementKind.RECEIPT,
        f"{source}:{receipt.event_id}", d_on_hand=0 if stale else receipt.quantity,
        d_incoming=-receipt.quantity, condition=receipt.quantity <= INCOMING,
        at=utc(receipt.received_at),
    )  # fmt: skip
    if not moved:
        raise _Refused(
            f"incoming of {receipt.sku} at {receipt.node_id} is below {receipt.quantity}"
        )


def _why_not_received(session: Session, receipt: Receipt) -> str:
    line = _stored(session, receipt.key)
    if line is None:
        return f"no {receipt.key}"
    if line.status != IncomingStatus.OPEN:
        return f"{receipt.key} is {line.status}"
    open_units = line.quantity - line.received
    return f"would receive {receipt.quantity} of {receipt.key}, which has {open_units} open"


@dataclass(frozen=True, slots=True)
class IncomingFigure:
    """Open units of one SKU due at one node on one date (summed over its lines)."""

    node_id: str
    node_type: str
    sku: str
    expected_date: date
    units: int


def open_incoming(session: Session, skus: Iterable[str]) -> list[IncomingFigure]:
    """Open incoming units of these SKUs by node and expected date, at enabled nodes (a node
    down today may be up by the date), in (SKU, date, node) order. One query."""
    open_units = IncomingLine.quantity - IncomingLine.received
    query = (
        select(
            IncomingLine.node_id,
            Node.node_type,
            IncomingLine.sku,
            IncomingLine.expected_date,
            open_units,
        )
        .join(Node, col(Node.node_id) == col(IncomingLine.node_id))
        .where(
            col(IncomingLine.sku).in_(sorted(set(skus))),
            col(IncomingLine.status) == IncomingStatus.OPEN,
            col(Node.enabled).is_(True),
        )
        .order_by(col(IncomingLine.sku), col(IncomingLine.expected_date), col(IncomingLine.node_id))
    )
    summed: dict[tuple[str, str, str, date], int] = {}
    for node_id, node_type, sku, expected, units in session.execute(query):
        key = (node_id, node_type, sku, expected)
        summed[key] = summed.get(key, 0) + int(units)
    return [IncomingFigure(n, t, s, d, u) for (n, t, s, d), u in summed.items() if u > 0]


def line_problems(session: Session) -> list[str]:
    """Lines whose received quantity is negative or above their quantity, or whose status
    disagrees with it: receipts are conditional, so any is a bug."""
    problems = []
    for line in session.exec(  # type: ignore[call-overload]
        select(IncomingLine).where(
            (col(IncomingLine.received) < 0)
            | (col(IncomingLine.received) > col(IncomingLine.quantity))
            | (
                (col(IncomingLine.status) == IncomingStatus.OPEN)
                & (col(IncomingLine.received) == col(IncomingLine.quantity))
            )
        )
    ).scalars():
        problems.append(
            f"{line.kind} {line.reference} line {line.line}: received {line.received} of"
            f" {line.quantity}, {line.status}"
        )
    return problems
