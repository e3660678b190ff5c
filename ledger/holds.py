"""Checkout holds: soft reservations with an expiry.

A hold takes units out of ATP (the `held` counter) like a reservation does, with the same
conditional UPDATE. It ends in one of three ways, each a compare-and-set on the hold's status so
it happens once: released by the shopper, expired by time, or converted into the order's
reservations in the same transaction (no window in which another buyer can take the stock).
"""

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from ledger.availability import positions_for
from ledger.errors import InsufficientStock, LedgerError
from ledger.positions import ATP, move_stock
from ledger.stock import ReservationRequest, record_reservation
from ledger.tables import CheckoutHold, HoldLine, HoldStatus, MovementKind


@dataclass(frozen=True)
class HoldRequestLine:
    line_no: int
    node_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class HoldLimit:
    """How much of a SKU one channel's active holds may keep out of everyone's reach: the
    greater of `share` of the SKU's sellable units (on hand - reserved - safety, at active nodes)
    and `units` (so one shopper can still hold the last few). Without it a storefront, or a
    bot behind one, could hold the whole network for a day."""

    share: float = 0.5
    units: int = 10

    def units_for(self, sellable: int) -> int:
        return max(self.units, int(self.share * sellable))


class HoldLimitExceeded(LedgerError):
    code = "hold_limit_exceeded"

    def __init__(self, channel: str, sku: str, held: int, limit: int, rule: HoldLimit) -> None:
        self.channel = channel
        self.sku = sku
        self.held = held
        self.limit = limit
        super().__init__(
            f"channel {channel} would hold {held} x {sku}; its holds of one SKU are limited to "
            f"{limit} units (the greater of {rule.units} units and {rule.share:.0%} of the "
            "SKU's sellable stock); release holds or order without one"
        )


class HoldNotActive(LedgerError):
    code = "hold_not_active"

    def __init__(self, hold_id: str, status: str | None) -> None:
        self.hold_id = hold_id
        self.status = status
        super().__init__(f"hold {hold_id} is {status or 'unknown'}")


def place_hold(
    session: Session,
    hold_id: str,
    channel: str,
    lines: list[HoldRequestLine],
    expires_at: datetime,
    limit: HoldLimit | None = None,
    option: str | None = None,
    promised_date: date | None = None,
) -> CheckoutHold:
    """Hold every line or raise InsufficientStock, or HoldLimitExceeded when the channel's
    holds would pass `limit`. Placing the same hold id again is a no-op. `option` and
    `promised_date`: the checkout option held and its date, for the order that converts it."""
    existing = session.get(CheckoutHold, hold_id)
    if existing is not None:
        return existing
    hold = CheckoutHold(
        hold_id=hold_id,
        channel=channel,
        expires_at=expires_at,
        option=option,
        promised_date=promised_date,
    )
    session.add(hold)
    session.flush()
    for line in sorted(lines, key=lambda ln: (ln.node_id, ln.sku, ln.line_no)):
        taken = move_stock(
            session, line.node_id, line.sku, MovementKind.HOLD, hold_id,
            d_held=line.quantity, condition=line.quantity <= ATP,
        )  # fmt: skip
        if not taken:
            raise InsufficientStock(node_id=line.node_id, sku=line.sku, quantity=line.quantity)
        session.add(HoldLine(hold_id=hold_id, **line.__dict__))
    session.flush()
    if limit is not None:
        _refuse_beyond_limit(session, channel, {ln.sku for ln in lines}, limit)
    return hold


def _refuse_beyond_limit(session: Session, channel: str, skus: set[str], limit: HoldLimit) -> None:
    """Checked after the positions were updated: on PostgreSQL a concurrent hold of the channel
    at the same positions has committed by then, so its lines are counted. Holds at other
    nodes can still pass together; the limit bounds abuse, it is not an exact quota."""
    held = dict(
        session.exec(  # type: ignore[call-overload]
            select(HoldLine.sku, func.sum(HoldLine.quantity))
            .join(CheckoutHold, col(CheckoutHold.hold_id) == col(HoldLine.hold_id))
            .where(
                col(CheckoutHold.status) == HoldStatus.ACTIVE,
                col(CheckoutHold.channel) == channel,
                col(HoldLine.sku).in_(skus),
            )
            .group_by(col(HoldLine.sku))
        ).all()
    )
    sellable: dict[str, int] = dict.fromkeys(skus, 0)
    for f in positions_for(session, skus):
        sellable[f.sku] += max(0, f.on_hand - f.reserved - f.safety_stock)
    for sku in sorted(skus):
        allowed = limit.units_for(sellable[sku])
        if held.get(sku, 0) > allowed:
            raise HoldLimitExceeded(channel, sku, int(held[sku]), allowed, limit)


def hold_lines(session: Session, hold_id: str) -> list[HoldLine]:
    return list(
        session.exec(
            select(HoldLine).where(col(HoldLine.hold_id) == hold_id).order_by(col(HoldLine.line_no))
        ).all()
    )


def _end_hold(session: Session, hold_id: str, to_status: str, order_id: str | None = None) -> bool:
    result = session.exec(  # type: ignore[call-overload]
        update(CheckoutHold)
        .where(col(CheckoutHold.hold_id) == hold_id, col(CheckoutHold.status) == HoldStatus.ACTIVE)
        .values(status=to_status, order_id=order_id)
    )
    return result.rowcount == 1


def release_hold(session: Session, hold_id: str, expired: bool = False) -> int:
    """Give the held units back. Idempotent; returns the units released (0 if already ended)."""
    status = HoldStatus.EXPIRED if expired else HoldStatus.RELEASED
    if not _end_hold(session, hold_id, status):
        return 0
    kind = MovementKind.HOLD_EXPIRY if expired else MovementKind.HOLD_RELEASE
    return _give_back(session, hold_lines(session, hold_id), kind)


def expire_hold(session: Session, hold_id: str, now: datetime) -> int:
    """End this one hold if its time is up and it is still active, as housekeeping would, and
    give its units back; returns the units released (0 if it is not due or already ended)."""
    result = session.exec(  # type: ignore[call-overload]
        update(CheckoutHold)
        .where(
            col(CheckoutHold.hold_id) == hold_id,
            col(CheckoutHold.status) == HoldStatus.ACTIVE,
            col(CheckoutHold.expires_at) <= now,
        )
        .values(status=HoldStatus.EXPIRED)
    )
    if result.rowcount != 1:
        return 0
    return _give_back(session, hold_lines(session, hold_id), MovementKind.HOLD_EXPIRY)


def _give_back(session: Session, lines: list[HoldLine], kind: str) -> int:
    # Positions in one global order (node, SKU), as every other writer takes them: two
    # transactions never wait on each other's positions in opposite orders.
    units = 0
    for line in sorted(lines, key=lambda ln: (ln.node_id, ln.sku, ln.hold_id, ln.line_no)):
        move_stock(session, line.node_id, line.sku, kind, line.hold_id, d_held=-line.quantity)
        units += line.quantity
    return units


def expire_holds(session: Session, now: datetime, limit: int = 500) -> list[str]:
    """Release holds whose time is up; returns their ids.

    Every due hold is ended first (hold rows in id order), then all their units go back
    (positions in node, SKU order). Ending and releasing one hold at a time would hold a
    position while waiting for the next hold, which a shopper releasing that hold may have
    locked on its way to the same position: a deadlock on PostgreSQL."""
    due = session.exec(
        select(CheckoutHold.hold_id)
        .where(col(CheckoutHold.status) == HoldStatus.ACTIVE, col(CheckoutHold.expires_at) <= now)
        .order_by(col(CheckoutHold.expires_at))
        .limit(limit)
    ).all()
    ended = [h for h in sorted(due) if _end_hold(session, h, HoldStatus.EXPIRED)]
    if ended:
        lines = session.exec(select(HoldLine).where(col(HoldLine.hold_id).in_(ended))).all()
        _give_back(session, list(lines), MovementKind.HOLD_EXPIRY)
    return ended


def convert_hold(
    session: Session,
    hold_id: str,
    order_id: str,
    shipment_id_for_node: dict[str, str],
    now: datetime,
) -> list[HoldLine]:
    """Turn an active, unexpired hold into the order's reservations: held -> reserved in one
    UPDATE per line, so the units are never available in between. Raises HoldNotActive."""
    hold = session.get(CheckoutHold, hold_id)
    if hold is None or hold.status != HoldStatus.ACTIVE or _as_aware(hold.expires_at) <= now:
        raise HoldNotActive(hold_id, hold.status if hold else None)
    if not _end_hold(session, hold_id, HoldStatus.CONVERTED, order_id):
        raise HoldNotActive(hold_id, "ended concurrently")
    lines = hold_lines(session, hold_id)
    for line in sorted(lines, key=lambda ln: (ln.node_id, ln.sku, ln.line_no)):
        move_stock(
            session, line.node_id, line.sku, MovementKind.HOLD_CONVERSION, order_id,
            d_held=-line.quantity, d_reserved=line.quantity,
        )  # fmt: skip
        record_reservation(
            session,
            ReservationRequest(
                order_id=order_id,
                shipment_id=shipment_id_for_node[line.node_id],
                line_no=line.line_no,
                node_id=line.node_id,
                sku=line.sku,
                quantity=line.quantity,
            ),
        )
    return lines


def _as_aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored in UTC."""
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
