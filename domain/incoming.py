"""Stock by date: what is available now plus what purchase orders and transfers bring, by their
expected dates. Pure: the API's availability answer and any promise from incoming stock (a
channel that sells pre-orders) ask these functions, never their own sum."""

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Protocol

from pydantic import BaseModel, Field

from domain.availability import ChannelPoolRule


class IncomingUnits(BaseModel):
    """Open incoming units expected on one date (a date in the past: the goods are late)."""

    date: dt.date
    units: int = Field(ge=0)


class IncomingAtNode(Protocol):
    @property
    def node_id(self) -> str: ...
    @property
    def node_type(self) -> str: ...
    @property
    def sku(self) -> str: ...
    @property
    def expected_date(self) -> dt.date: ...
    @property
    def units(self) -> int: ...


def sells_from(node_id: str, node_type: str, pool: ChannelPoolRule | None) -> bool:
    """Whether a channel's pool includes the node at all (no pool: every node). Its share and
    cap bound what it sells of the node's stock now; goods still to come are counted whole."""
    if pool is None:
        return True
    if pool.node_types is not None and node_type not in pool.node_types:
        return False
    return pool.node_ids is None or node_id in pool.node_ids


def incoming_by_date(
    figures: Iterable[IncomingAtNode], pool: ChannelPoolRule | None
) -> dict[str, list[IncomingUnits]]:
    """Per SKU: the open incoming units at the nodes the channel sells from, summed by
    expected date, earliest first."""
    summed: dict[str, dict[dt.date, int]] = {}
    for f in figures:
        if f.units > 0 and sells_from(f.node_id, f.node_type, pool):
            by_date = summed.setdefault(f.sku, {})
            by_date[f.expected_date] = by_date.get(f.expected_date, 0) + f.units
    return {
        sku: [IncomingUnits(date=d, units=u) for d, u in sorted(by_date.items())]
        for sku, by_date in summed.items()
    }


def available_on(day: dt.date, available_now: int, incoming: Sequence[IncomingUnits]) -> int:
    """Units available on `day`: what is available now and every open line expected by then.
    A late line (expected before today) still counts: it is open, so it is still coming."""
    return max(0, available_now) + sum(i.units for i in incoming if i.date <= day)


def first_day_available(
    quantity: int, today: dt.date, available_now: int, incoming: Sequence[IncomingUnits]
) -> dt.date | None:
    """The first day from `today` on which `quantity` units are available; None if what is
    now and what is coming never add up to it. A late line counts from today."""
    if quantity <= max(0, available_now):
        return today
    total = max(0, available_now)
    for i in sorted(incoming, key=lambda i: i.date):
        total += i.units
        if total >= quantity:
            return max(today, i.date)
    return None
