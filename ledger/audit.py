"""Does the ledger balance? Reserved counters must equal the sum of open reservations."""

from sqlalchemy import func
from sqlmodel import Session, col, select

from ledger.tables import Reservation, ReservationStatus, StockPosition


def ledger_imbalances(session: Session) -> list[str]:
    """Every position whose reserved counter disagrees with its active reservation rows,
    or whose counters went negative. Empty means the ledger balances."""
    open_units = dict(
        session.exec(
            select(
                Reservation.node_id + "|" + Reservation.sku,  # type: ignore[operator]
                func.sum(Reservation.quantity),
            )
            .where(col(Reservation.status) == ReservationStatus.ACTIVE)
            .group_by(col(Reservation.node_id), col(Reservation.sku))
        ).all()
    )
    problems = []
    for position in session.exec(select(StockPosition)).all():
        key = f"{position.node_id}|{position.sku}"
        expected = int(open_units.pop(key, 0) or 0)
        if position.reserved != expected:
            problems.append(f"{key}: reserved {position.reserved} but open reservations {expected}")
        if position.reserved < 0 or position.on_hand < 0:
            problems.append(f"{key}: negative counter (on hand {position.on_hand})")
        if position.reserved > position.on_hand:
            problems.append(
                f"{key}: reserved {position.reserved} exceeds on hand {position.on_hand}"
            )
    problems.extend(f"{key}: open reservations without a position" for key in open_units)
    return problems


def open_reservations_of(session: Session, order_ids: list[str]) -> list[Reservation]:
    return list(
        session.exec(
            select(Reservation).where(
                col(Reservation.order_id).in_(order_ids),
                col(Reservation.status) == ReservationStatus.ACTIVE,
            )
        ).all()
    )
