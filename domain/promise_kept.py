"""Promise kept: of the shipments that carried a promise, how many left their node by the ship-by
date and reached the customer by the promised date, per channel and per node.

Pure arithmetic over what the order history says happened; dates are compared in UTC (a parcel
handed over at 23:30 in Chicago on its ship-by date is a day late in UTC: one rule everywhere
beats a time zone per node that the history does not record)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from domain.errors import DomainError
from domain.orders import OPEN_SHIPMENT_STATUSES, ShipmentStatus

_LEFT_ITS_NODE = frozenset({ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED})


@dataclass(frozen=True, slots=True)
class ShipmentOutcome:
    """One shipment's promise and what became of it, as the order history records it."""

    order_id: str
    shipment_id: str
    channel: str
    node_id: str
    ship_by: date | None
    promised_date: date | None
    status: ShipmentStatus = ShipmentStatus.ALLOCATED
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def counts(self) -> bool:
        """Whether the shipment is the promise's to keep: still open, or shipped. One rejected,
        timed out, moved or cancelled before it left is not: its lines' new shipment carries the
        promise (and a rejection or a missed SLA counts in node health already)."""
        return (
            self.shipped_at is not None
            or self.status in OPEN_SHIPMENT_STATUSES
            or self.status in _LEFT_ITS_NODE
        )

    @property
    def due(self) -> date | None:
        """The date the measure's window filters on: the ship-by date (the promised date for a
        shipment that recorded only that)."""
        return self.ship_by or self.promised_date


@dataclass(slots=True)
class PromiseFigures:
    """Counts over shipments with a promise. Shares are of what happened (shipped on time of
    shipped), None while nothing has; days late average over the late ones only."""

    shipments: int = 0
    shipped: int = 0
    shipped_on_time: int = 0
    shipped_late: int = 0
    days_late_shipping: int = 0  # the sum, for the average
    delivered: int = 0
    delivered_on_time: int = 0
    delivered_late: int = 0
    days_late_delivery: int = 0
    # Not shipped and past the ship-by date on `as_of`: late already, and not yet in `shipped_late`.
    overdue: int = 0
    # The history says it shipped (delivered) but not when: in neither count nor share.
    shipped_undated: int = 0
    delivered_undated: int = 0

    @property
    def shipped_on_time_share(self) -> float | None:
        return self.shipped_on_time / self.shipped if self.shipped else None

    @property
    def delivered_on_time_share(self) -> float | None:
        return self.delivered_on_time / self.delivered if self.delivered else None

    @property
    def average_days_late_shipping(self) -> float | None:
        return self.days_late_shipping / self.shipped_late if self.shipped_late else None

    @property
    def average_days_late_delivery(self) -> float | None:
        return self.days_late_delivery / self.delivered_late if self.delivered_late else None

    def add(self, outcome: ShipmentOutcome, as_of: date) -> None:
        self.shipments += 1
        if outcome.ship_by is not None:
            if outcome.shipped_at is not None:
                late = days_late(outcome.shipped_at, outcome.ship_by)
                self.shipped += 1
                if late:
                    self.shipped_late += 1
                    self.days_late_shipping += late
                else:
                    self.shipped_on_time += 1
            elif outcome.status in _LEFT_ITS_NODE:
                self.shipped_undated += 1
            elif as_of > outcome.ship_by:
                self.overdue += 1
        if outcome.delivered_at is None and outcome.status == ShipmentStatus.DELIVERED:
            self.delivered_undated += 1
        elif outcome.delivered_at is not None and outcome.promised_date is not None:
            late = days_late(outcome.delivered_at, outcome.promised_date)
            self.delivered += 1
            if late:
                self.delivered_late += 1
                self.days_late_delivery += late
            else:
                self.delivered_on_time += 1


@dataclass(slots=True)
class PromiseKept:
    overall: PromiseFigures = field(default_factory=PromiseFigures)
    by_channel: dict[str, PromiseFigures] = field(default_factory=dict)
    by_node: dict[str, PromiseFigures] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PromiseWindow:
    """Which shipments the measure is over: due (ship-by date) from `since` to `until`, both
    included, optionally of one channel or one node."""

    since: date | None = None
    until: date | None = None
    channel: str | None = None
    node_id: str | None = None

    def includes(self, outcome: ShipmentOutcome) -> bool:
        due = outcome.due
        if due is None:
            return False  # planned before promises were recorded: nothing to keep
        if self.since is not None and due < self.since:
            return False
        if self.until is not None and due > self.until:
            return False
        if self.channel is not None and outcome.channel != self.channel:
            return False
        return self.node_id is None or outcome.node_id == self.node_id


def days_late(happened_at: datetime, due: date) -> int:
    """Whole days after `due` that `happened_at` fell on, in UTC; 0 on or before it."""
    return max(0, (utc_date(happened_at) - due).days)


def utc_date(moment: datetime) -> date:
    # Naive times in the history are UTC (the read model stores them so).
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def promise_kept(
    outcomes: Iterable[ShipmentOutcome], window: PromiseWindow, as_of: date
) -> PromiseKept:
    """The figures over every outcome in the window, overall, per channel and per node."""
    kept = PromiseKept()
    for outcome in outcomes:
        if not (outcome.counts and window.includes(outcome)):
            continue
        kept.overall.add(outcome, as_of)
        kept.by_channel.setdefault(outcome.channel, PromiseFigures()).add(outcome, as_of)
        kept.by_node.setdefault(outcome.node_id, PromiseFigures()).add(outcome, as_of)
    return kept


class InvalidWindow(DomainError):
    code = "invalid_request"

    def __init__(self, since: date, until: date) -> None:
        super().__init__(f"since: {since} is after until: {until}")


class DateOutOfRange(DomainError):
    """A window edge no order history can reach (and date arithmetic around it overflows)."""

    code = "invalid_request"

    def __init__(self, field: str, value: date) -> None:
        self.field = field
        super().__init__(f"{field}: {value} is outside {EARLIEST} to {LATEST}")


EARLIEST = date(2000, 1, 1)
LATEST = date(2999, 12, 31)
