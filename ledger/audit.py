"""Does the ledger balance?

- Reserved counters equal the sum of active reservations; held counters the sum of active holds;
  incoming counters the open units (quantity less received) of open incoming lines.
- Every counter equals what its append-only movements rebuild (reconcile).
"""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, col

from ledger.incoming import line_problems
from ledger.tables import (
    CheckoutHold,
    HoldLine,
    HoldStatus,
    IncomingLine,
    IncomingStatus,
    Reservation,
    ReservationStatus,
    StockMovement,
    StockPosition,
)


@dataclass(frozen=True)
class Drift:
    node_id: str
    sku: str
    counter: str
    stored: int
    rebuilt: int

    def __str__(self) -> str:
        return (
            f"{self.node_id}|{self.sku}: {self.counter} is {self.stored} "
            f"but the ledger entries rebuild {self.rebuilt}"
        )


_COUNTERS = ("on_hand", "reserved", "held", "incoming")


def reconcile(session: Session) -> list[Drift]:
    """Rebuild every position from its movements and report any counter that disagrees."""
    sums = {
        (r[0], r[1]): tuple(int(v or 0) for v in r[2:])
        for r in session.execute(
            select(
                StockMovement.node_id,
                StockMovement.sku,
                func.sum(StockMovement.d_on_hand),
                func.sum(StockMovement.d_reserved),
                func.sum(StockMovement.d_held),
                func.sum(StockMovement.d_incoming),
            ).group_by(col(StockMovement.node_id), col(StockMovement.sku))
        )
    }
    drifts = []
    for p in session.exec(select(StockPosition)).scalars():  # type: ignore[call-overload]
        rebuilt = sums.pop((p.node_id, p.sku), (0, 0, 0, 0))
        for name, stored, value in zip(
            _COUNTERS, (p.on_hand, p.reserved, p.held, p.incoming), rebuilt, strict=True
        ):
            if stored != value:
                drifts.append(Drift(p.node_id, p.sku, name, stored, value))
    for (node_id, sku), rebuilt in sums.items():
        drifts.append(Drift(node_id, sku, "position", 0, sum(rebuilt)))
    return drifts


def ledger_imbalances(session: Session) -> list[str]:
    """Counters that disagree with open reservations and holds, negative counters, and drift
    from the ledger entries. Empty means the ledger balances."""
    open_reserved = _sum_by_position(
        session,
        select(Reservation.node_id, Reservation.sku, func.sum(Reservation.quantity))
        .where(col(Reservation.status) == ReservationStatus.ACTIVE)
        .group_by(col(Reservation.node_id), col(Reservation.sku)),
    )
    open_held = _sum_by_position(
        session,
        select(HoldLine.node_id, HoldLine.sku, func.sum(HoldLine.quantity))
        .join(CheckoutHold, col(CheckoutHold.hold_id) == col(HoldLine.hold_id))
        .where(col(CheckoutHold.status) == HoldStatus.ACTIVE)
        .group_by(col(HoldLine.node_id), col(HoldLine.sku)),
    )
    open_incoming = _sum_by_position(
        session,
        select(
            IncomingLine.node_id,
            IncomingLine.sku,
            func.sum(IncomingLine.quantity - IncomingLine.received),
        )
        .where(col(IncomingLine.status) == IncomingStatus.OPEN)
        .group_by(col(IncomingLine.node_id), col(IncomingLine.sku)),
    )
    problems = []
    for p in session.exec(select(StockPosition)).scalars():  # type: ignore[call-overload]
        key = (p.node_id, p.sku)
        label = f"{p.node_id}|{p.sku}"
        if p.reserved != open_reserved.pop(key, 0):
            problems.append(f"{label}: reserved {p.reserved} but open reservations differ")
        if p.held != open_held.pop(key, 0):
            problems.append(f"{label}: held {p.held} but active holds differ")
        if p.incoming != open_incoming.pop(key, 0):
            problems.append(f"{label}: incoming {p.incoming} but open incoming lines differ")
        if min(p.on_hand, p.reserved, p.held, p.incoming) < 0:
            problems.append(f"{label}: negative counter")
    problems.extend(f"{k}: open reservations without a position" for k in open_reserved)
    problems.extend(f"{k}: active holds without a position" for k in open_held)
    problems.extend(f"{k}: open incoming lines without a position" for k in open_incoming)
    problems.extend(line_problems(session))
    problems.extend(str(d) for d in reconcile(session))
    return problems


def _sum_by_position(session: Session, query) -> dict[tuple[str, str], int]:  # type: ignore[no-untyped-def]
    return {(r[0], r[1]): int(r[2] or 0) for r in session.execute(query)}


def open_reservations_of(session: Session, order_ids: list[str]) -> list[Reservation]:
    return list(
        session.exec(
            select(Reservation).where(
                col(Reservation.order_id).in_(order_ids),
                col(Reservation.status) == ReservationStatus.ACTIVE,
            )
        ).scalars()  # type: ignore[call-overload]
    )
