"""What the order history (the read model's documents) says of each shipment's promise: the
promise-kept measure's input.

Scale: the measure reads every document of the orders changed since the window's start (less
a margin), streaming them in batches and reading only the shipments' few fields, not a
validated OrderState each. That is a scan of the window's orders: fine for a window of days to
a few weeks of a retailer's orders (100k documents is seconds), not for a year on demand. A
larger history wants the promise's dates as columns beside the document (a migration), not
this."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, select

from domain.orders import ShipmentStatus
from domain.promise_kept import ShipmentOutcome
from ledger.tables import OrderView

# An order is read when it changed in the window or this long before its start: a shipment due
# in the window was planned before it, and one that shipped early changed its order then. An
# order planned more than this before its ship-by date and untouched since is not seen.
LOOKBACK = timedelta(days=14)
BATCH = 500


def shipment_outcomes(
    session: Session,
    since: date | None = None,
    channel: str | None = None,
    lookback: timedelta = LOOKBACK,
) -> Iterator[ShipmentOutcome]:
    """Every shipment with a promise of the orders changed since `since` less `lookback` (all
    orders when `since` is None), of one channel if given. The caller filters by due date and
    node (domain.promise_kept.PromiseWindow)."""
    query = select(OrderView.document).order_by(col(OrderView.order_id))
    if since is not None:
        start = datetime.combine(since, time(), tzinfo=UTC) - lookback
        query = query.where(col(OrderView.updated_at) >= start)
    if channel is not None:
        query = query.where(col(OrderView.channel) == channel)
    for document in session.exec(query.execution_options(yield_per=BATCH)):
        yield from outcomes_of(document)


def outcomes_of(document: dict) -> Iterator[ShipmentOutcome]:
    """The promised shipments of one stored OrderState document (`model_dump(mode="json")`)."""
    order = document["order"]
    for shipment in document.get("shipments", []):
        ship_by = _date(shipment.get("ship_by"))
        promised = _date(shipment.get("promised_date"))
        if ship_by is None and promised is None:
            continue
        yield ShipmentOutcome(
            order_id=order["order_id"],
            shipment_id=shipment["shipment_id"],
            channel=order["channel"],
            node_id=shipment["node_id"],
            ship_by=ship_by,
            promised_date=promised,
            status=ShipmentStatus(shipment.get("status", ShipmentStatus.ALLOCATED)),
            shipped_at=_moment(shipment.get("shipped_at")),
            delivered_at=_moment(shipment.get("delivered_at")),
        )


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
