"""The promise-kept measure as a unit of work: the window's shipments read from the order
history (ledger.promise_history), the arithmetic (domain.promise_kept)."""

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from domain.promise_kept import (
    EARLIEST,
    LATEST,
    DateOutOfRange,
    InvalidWindow,
    PromiseKept,
    PromiseWindow,
    promise_kept,
)
from ledger.promise_history import shipment_outcomes

# Without `since`, the measure is over the last thirty days: a month of orders is what an ops
# review looks at, and it bounds the read (ledger.promise_history's scale note).
DEFAULT_DAYS = 30


def measure_promise_kept(
    engine: Engine,
    since: date | None = None,
    until: date | None = None,
    channel: str | None = None,
    node_id: str | None = None,
    as_of: date | None = None,
) -> tuple[PromiseWindow, PromiseKept]:
    """The figures for shipments due (ship-by date) from `since` to `until`, both included;
    `as_of` (today, UTC) is the day against which an unshipped shipment is overdue. Returns the
    window measured (with its defaults filled in) beside the figures."""
    today = as_of or datetime.now(UTC).date()
    for field, value in (("since", since), ("until", until)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise DateOutOfRange(field, value)
    start = since or (until or today) - timedelta(days=DEFAULT_DAYS)
    if until is not None and start > until:
        raise InvalidWindow(start, until)
    window = PromiseWindow(since=start, until=until, channel=channel, node_id=node_id)
    # A read-only snapshot: nothing is written, so no transaction of the ledger's is opened.
    with Session(engine) as session:
        kept = promise_kept(shipment_outcomes(session, start, channel), window, today)
    return window, kept
