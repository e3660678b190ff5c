"""Stock feeds from ERP / WMS / store systems.

- Every message carries the source's event id: a replay is recognised (FeedEvent) and ignored.
- Deltas adjust on hand by a quantity. A delta whose as-of time is not after the position's last
  snapshot is already counted in that snapshot and is ignored as stale.
- A full snapshot gives absolute on hand per SKU at one node as of a time (SKUs it omits have 0).
  It never goes back in time (an older snapshot than the last one applied is stale), it never
  touches reservations or holds, and movements we recorded after its as-of time (shipments,
  deltas, adjustments) are added on top, so a late snapshot cannot resurrect shipped units.
  Those movements are dated when the stock really moved (a delta's as-of time, a parcel's
  departure when the node says so), not when OpenDOM processed them, so a parcel that left
  before the count is not subtracted a second time.
- A count below what is reserved and held is the truth about the shelf: on hand takes it, the
  reservations stand, and the position is oversold (ledger.positions.oversold_positions):
  sourcing sees nothing to promise there and `opendom reconcile` names it for a person to
  resolve. Refusing the count instead would keep selling units that are not there.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from ledger.positions import keeps_commitments, move_stock, record_movements
from ledger.safety import refresh_safety_stock
from ledger.stock import open_position
from ledger.tables import (
    FeedEvent,
    FeedSource,
    MovementKind,
    StockMovement,
    StockPosition,
    utcnow,
)

# Movements that change physical stock and that a snapshot taken earlier cannot know about.
# A receipt (ledger.incoming) is goods put away at its received time, like a delta.
_AFTER_SNAPSHOT_KINDS = (
    MovementKind.SHIPMENT,
    MovementKind.DELTA,
    MovementKind.ADJUSTMENT,
    MovementKind.RECEIPT,
)


@dataclass(frozen=True)
class DeltaLine:
    event_id: str
    node_id: str
    sku: str
    delta: int
    as_of: datetime


@dataclass
class DeltaOutcome:
    applied: int = 0
    replayed: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    # would take on hand below zero, or below what is reserved or held
    refused: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # by refused event id


@dataclass
class SnapshotOutcome:
    replayed: bool = False
    stale_skus: int = 0
    changed: int = 0
    unchanged: int = 0
    created: int = 0


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _first_time(session: Session, source: str, event_id: str) -> bool:
    """Record the event id; False if this source sent it before."""
    try:
        with session.begin_nested():
            session.add(FeedEvent(source=source, event_id=event_id))
        return True
    except IntegrityError:
        return False


def apply_deltas(session: Session, source: str, lines: list[DeltaLine]) -> DeltaOutcome:
    """Apply each line once. Positions are touched in (node, SKU) order, as reservations touch
    them (ledger.stock), so a batch and an order never wait on each other in opposite orders on
    PostgreSQL; lines of one position keep the order they came in. A delta that would take on
    hand below zero, or below what is reserved or held there, is refused and its event id is
    not recorded: the source may send it again corrected."""
    outcome = DeltaOutcome()
    for line in sorted(lines, key=lambda ln: (ln.node_id, ln.sku)):
        if not _first_time(session, source, line.event_id):
            outcome.replayed.append(line.event_id)
            continue
        position = _position_or_open(session, line.node_id, line.sku)
        if position.snapshot_as_of is not None and utc(line.as_of) <= utc(position.snapshot_as_of):
            outcome.stale.append(line.event_id)
            continue
        applied = move_stock(
            session, line.node_id, line.sku, MovementKind.DELTA, f"{source}:{line.event_id}",
            d_on_hand=line.delta, condition=keeps_commitments(line.delta), at=utc(line.as_of),
        )  # fmt: skip
        if applied:
            outcome.applied += 1
        else:
            _forget(session, source, line.event_id)
            outcome.refused.append(line.event_id)
            outcome.reasons[line.event_id] = _why_refused(session, line)
    return outcome


def _forget(session: Session, source: str, event_id: str) -> None:
    session.execute(
        delete(FeedEvent).where(
            col(FeedEvent.source) == source, col(FeedEvent.event_id) == event_id
        )
    )


def _why_refused(session: Session, line: DeltaLine) -> str:
    on_hand, committed = session.execute(
        select(StockPosition.on_hand, StockPosition.reserved + StockPosition.held).where(
            col(StockPosition.node_id) == line.node_id, col(StockPosition.sku) == line.sku
        )
    ).one()
    where = f"on hand of {line.sku} at {line.node_id}"
    if on_hand + line.delta < 0:
        return f"would take {where} below 0"
    return f"would take {where} below its {committed} reserved or held units"


def _position_or_open(session: Session, node_id: str, sku: str) -> StockPosition:
    position = session.exec(  # type: ignore[call-overload]
        select(StockPosition).where(
            col(StockPosition.node_id) == node_id, col(StockPosition.sku) == sku
        )
    ).scalar_one_or_none()
    return position or open_position(session, node_id, sku, 0)


def apply_snapshot(
    session: Session,
    source: str,
    event_id: str,
    node_id: str,
    as_of: datetime,
    on_hand_by_sku: dict[str, int],
) -> SnapshotOutcome:
    """Apply a full snapshot of one node. Bulk statements: 100k positions in a few seconds."""
    outcome = SnapshotOutcome()
    if not _first_time(session, source, event_id):
        outcome.replayed = True
        return outcome
    as_of = utc(as_of)
    current = _lock_positions(session, node_id)
    since = _movements_since(session, node_id, as_of)
    updates, movements = [], []
    cause = f"{source}:{event_id}"
    for sku, (position_id, on_hand, snapshot_as_of) in current.items():
        if snapshot_as_of is not None and utc(snapshot_as_of) >= as_of:
            outcome.stale_skus += 1
            continue
        target = max(0, on_hand_by_sku.get(sku, 0) + since.get(sku, 0))
        updates.append({"pid": position_id, "new_on_hand": target})
        if target == on_hand:
            outcome.unchanged += 1
            continue
        outcome.changed += 1
        movements.append(_snapshot_movement(node_id, sku, target - on_hand, cause))
    if updates:
        table = StockPosition.__table__  # Core executemany, not the ORM's per-object path
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("pid"))
            .values(on_hand=bindparam("new_on_hand"), snapshot_as_of=as_of, updated_at=utcnow()),
            updates,
        )
    new = {sku: units for sku, units in on_hand_by_sku.items() if sku not in current}
    _open_positions(session, node_id, new, as_of, cause)
    if new:
        refresh_safety_stock(session, node_id)
    outcome.created = len(new)
    record_movements(session, movements)
    return outcome


def _snapshot_movement(node_id: str, sku: str, d_on_hand: int, cause: str) -> dict:
    return {
        "node_id": node_id,
        "sku": sku,
        "kind": MovementKind.SNAPSHOT,
        "cause": cause,
        "d_on_hand": d_on_hand,
    }


def _lock_positions(session: Session, node_id: str) -> dict[str, tuple[int, int, datetime | None]]:
    query = (
        select(
            StockPosition.sku, StockPosition.id, StockPosition.on_hand, StockPosition.snapshot_as_of
        )
        .where(col(StockPosition.node_id) == node_id)
        .order_by(col(StockPosition.sku))
        .with_for_update()  # PostgreSQL row locks; SQLite writers are already serialised
    )
    return {r[0]: (r[1], r[2], r[3]) for r in session.execute(query)}


def _movements_since(session: Session, node_id: str, as_of: datetime) -> dict[str, int]:
    query = (
        select(StockMovement.sku, func.sum(StockMovement.d_on_hand))
        .where(
            col(StockMovement.node_id) == node_id,
            col(StockMovement.at) > as_of,
            col(StockMovement.kind).in_(_AFTER_SNAPSHOT_KINDS),
        )
        .group_by(col(StockMovement.sku))
    )
    return {r[0]: int(r[1] or 0) for r in session.execute(query)}


def _open_positions(
    session: Session, node_id: str, on_hand_by_sku: dict[str, int], as_of: datetime, cause: str
) -> None:
    if not on_hand_by_sku:
        return
    session.execute(
        insert(StockPosition),
        [
            {"node_id": node_id, "sku": sku, "on_hand": units, "reserved": 0, "held": 0,
             "safety_stock": 0, "snapshot_as_of": as_of, "updated_at": utcnow()}
            for sku, units in on_hand_by_sku.items()
        ],
    )  # fmt: skip
    record_movements(
        session,
        [_snapshot_movement(node_id, sku, units, cause) for sku, units in on_hand_by_sku.items()],
    )


def advance_cursor(
    session: Session, source: str, cursor: str | None, next_cursor: str | None
) -> bool:
    """Move a pulled source's cursor from `cursor` to `next_cursor`, in the caller's transaction
    with what the page applies. False if the cursor is no longer `cursor` (the page was applied
    by a retry or a concurrent pull): the caller applies nothing."""
    moved = session.execute(
        update(FeedSource)
        .where(
            col(FeedSource.source) == source,
            col(FeedSource.cursor).is_(None)
            if cursor is None
            else col(FeedSource.cursor) == cursor,
        )
        .values(cursor=next_cursor or cursor)
    )
    return moved.rowcount == 1  # type: ignore[attr-defined]
