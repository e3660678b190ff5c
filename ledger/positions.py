"""The one primitive that changes stock counters: a conditional UPDATE of a position plus its
append-only ledger entry, in the caller's transaction. Either both happen or neither."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, insert, select, update
from sqlmodel import Session, col

from ledger.tables import StockMovement, StockPosition, utcnow

ON_HAND = col(StockPosition.on_hand)
RESERVED = col(StockPosition.reserved)
HELD = col(StockPosition.held)
INCOMING = col(StockPosition.incoming)
SAFETY = col(StockPosition.safety_stock)
_POSITIONS = StockPosition.__table__  # type: ignore[attr-defined]
# The SQL twin of domain.availability.available_to_promise.
ATP = ON_HAND - RESERVED - HELD - SAFETY


def keeps_commitments(d_on_hand: int) -> ColumnElement[bool] | None:
    """The condition for taking stock out (a negative delta or adjustment): on hand may not go
    below what is reserved or held, or a promised unit would have nothing behind it. Stock
    coming in needs no condition: it must land even on a position already short."""
    return ON_HAND + d_on_hand >= RESERVED + HELD if d_on_hand < 0 else None


def move_stock(
    session: Session,
    node_id: str,
    sku: str,
    kind: str,
    cause: str,
    *,
    d_on_hand: int = 0,
    d_reserved: int = 0,
    d_held: int = 0,
    d_incoming: int = 0,
    condition: ColumnElement[bool] | None = None,
    at: datetime | None = None,
) -> bool:
    """Apply the deltas if the position exists and `condition` holds; record the movement,
    dated `at` when the stock really changed at another time than now (a delta's as-of time, a
    parcel's departure): snapshots compare that date with their own.
    Returns False (and changes nothing) when the condition fails."""
    where = and_(col(StockPosition.node_id) == node_id, col(StockPosition.sku) == sku)
    if condition is not None:
        where = and_(where, condition)
    # A Core statement on the session's connection: the ORM's bulk-update path would also
    # evaluate it against every position loaded in the session. Callers that hold a position
    # object and need its new figures refresh it (stock.adjust_on_hand does).
    result = session.connection().execute(
        update(_POSITIONS)
        .where(where)
        .values(
            on_hand=ON_HAND + d_on_hand,
            reserved=RESERVED + d_reserved,
            held=HELD + d_held,
            incoming=INCOMING + d_incoming,
            updated_at=utcnow(),
        )
    )
    if result.rowcount != 1:
        return False
    record_movements(
        session,
        [
            {
                "node_id": node_id,
                "sku": sku,
                "kind": kind,
                "cause": cause,
                "d_on_hand": d_on_hand,
                "d_reserved": d_reserved,
                "d_held": d_held,
                "d_incoming": d_incoming,
                **({"at": at} if at is not None else {}),
            }
        ],
    )
    return True


def record_movements(session: Session, rows: list[dict]) -> None:
    if rows:
        now = utcnow()
        session.execute(insert(StockMovement), [{"at": now, **row} for row in rows])


@dataclass(frozen=True)
class Oversold:
    """A position whose on hand is below what it has promised (reserved + held): a count from
    the node said so. Its promises stand, sourcing sees nothing there to promise, and a person
    decides (move the orders, or recount)."""

    node_id: str
    sku: str
    on_hand: int
    reserved: int
    held: int

    def __str__(self) -> str:
        short = self.reserved + self.held - self.on_hand
        return (
            f"{self.node_id}|{self.sku}: oversold by {short} (on hand {self.on_hand}, "
            f"reserved {self.reserved}, held {self.held})"
        )


def oversold_positions(session: Session) -> list[Oversold]:
    query = (
        select(StockPosition.node_id, StockPosition.sku, ON_HAND, RESERVED, HELD)
        .where(ON_HAND < RESERVED + HELD)
        .order_by(col(StockPosition.node_id), col(StockPosition.sku))
    )
    return [Oversold(*row) for row in session.execute(query)]
