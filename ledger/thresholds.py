"""Threshold events: tell channels when a SKU goes out of stock or comes back.

Reads the stock movements appended since the last run (a watermark, with the ids below it not yet
committed: ledger.movement_tail), recomputes availability only for the SKUs they touched, per
channel pool and for the unpooled view ("*"), and appends an event whenever the in-stock state
flips.
"""

import time

from sqlalchemy import select
from sqlmodel import Session, col

from domain.availability import ChannelPoolRule, channel_availability
from ledger import movement_tail
from ledger.availability import pool_rule, positions_for
from ledger.tables import (
    AvailabilityEvent,
    AvailabilityState,
    ChannelPool,
    StockMovement,
    Watermark,
)

UNPOOLED = "*"
WATERMARK = "availability-events"


def publish_threshold_events(
    session: Session, max_movements: int = 50_000
) -> list[AvailabilityEvent]:
    mark = session.get(Watermark, WATERMARK) or Watermark(name=WATERMARK)
    tail = movement_tail.Tail.stored(mark.position, mark.cursor)
    upto = min(movement_tail.latest_id(session), tail.position + max_movements)
    rows, tail = movement_tail.read(session, tail, [StockMovement.sku], upto, time.time())
    touched = {sku for (sku,) in rows}
    events: list[AvailabilityEvent] = []
    if touched:
        positions = positions_for(session, touched)
        for channel, pool in _views(session):
            totals = channel_availability(positions, pool)
            for sku in sorted(touched):
                units = totals[sku].total if sku in totals else 0
                event = _flip(session, channel, sku, units)
                if event is not None:
                    events.append(event)
    mark.position, mark.cursor = tail.position, tail.gaps_text()
    session.add(mark)
    session.add_all(events)
    session.flush()
    return events


def _views(session: Session) -> list[tuple[str, ChannelPoolRule | None]]:
    pools = session.exec(select(ChannelPool)).scalars()  # type: ignore[call-overload]
    views: list[tuple[str, ChannelPoolRule | None]] = [(UNPOOLED, None)]
    views.extend((row.channel, pool_rule(row)) for row in pools)
    return views


def _flip(session: Session, channel: str, sku: str, units: int) -> AvailabilityEvent | None:
    state = session.get(AvailabilityState, (channel, sku))
    in_stock = units > 0
    if state is None:
        session.add(AvailabilityState(channel=channel, sku=sku, in_stock=in_stock))
        return (
            None
            if in_stock
            else AvailabilityEvent(channel=channel, sku=sku, event="out_of_stock", units=0)
        )
    if state.in_stock == in_stock:
        return None
    state.in_stock = in_stock
    session.add(state)
    kind = "back_in_stock" if in_stock else "out_of_stock"
    return AvailabilityEvent(channel=channel, sku=sku, event=kind, units=units)


def events_after(
    session: Session, after: int, channel: str | None, limit: int
) -> list[AvailabilityEvent]:
    """A channel with a pool hears its own events; any other channel the unpooled view's."""
    view = channel if channel and session.get(ChannelPool, channel) else UNPOOLED
    query = (
        select(AvailabilityEvent)
        .where(col(AvailabilityEvent.id) > after, col(AvailabilityEvent.channel) == view)
        .order_by(col(AvailabilityEvent.id))
        .limit(limit)
    )
    return list(session.exec(query).scalars())  # type: ignore[call-overload]
