"""Bid prices' reads and writes: the order history the LP counts, the runs, the prices in force."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from domain.orders import OrderStatus
from ledger.tables import BidPrice, BidPriceRun, OrderView

RUN_OK = "ok"
RUN_FAILED = "failed"
# Runs kept for `opendom bid-prices show` and audit; older ones are pruned by store_run. Only the
# latest run's prices are ever kept (a failed run keeps the previous prices in force).
RUNS_KEPT = 200
# Orders that never took stock: a rejected order was invalid, a cancelled one gave its stock back.
_NOT_DEMAND = (OrderStatus.REJECTED.value, OrderStatus.CANCELLED.value)


@dataclass(frozen=True, slots=True)
class HistoryOrder:
    """What the LP needs from a recorded order: where it went and what it held."""

    lat: float
    lon: float
    skus: dict[str, int]


def order_history(
    session: Session, start: datetime, end: datetime, limit: int, channel: str | None = None
) -> list[HistoryOrder]:
    """Home-delivery orders created in [start, end), newest first, at most `limit`.

    Read from the orders read model (OrderView documents): one row per order, written at intake
    whatever happened next, so it counts the demand that found no stock too (a backorder has no
    reservation), and a re-allocation does not count an order twice (reservations would)."""
    query = (
        select(OrderView.document)
        .where(
            col(OrderView.created_at) >= start,
            col(OrderView.created_at) < end,
            col(OrderView.status).not_in(_NOT_DEMAND),
        )
        .order_by(col(OrderView.created_at).desc())
        .limit(limit)
    )
    if channel is not None:
        query = query.where(col(OrderView.channel) == channel)
    orders = []
    for document in session.exec(query):
        order = document["order"]
        if order.get("delivery_method", "home") != "home":
            continue  # a pickup is served from its store's shelf, not sourced across the network
        skus: dict[str, int] = {}
        for line in order["lines"]:
            skus[line["sku"]] = skus.get(line["sku"], 0) + int(line["quantity"])
        location = order["ship_to"]["location"]
        orders.append(HistoryOrder(float(location["lat"]), float(location["lon"]), skus))
    return orders


def latest_run(session: Session) -> BidPriceRun | None:
    """The newest successful run: its prices are the ones in force."""
    return session.exec(
        select(BidPriceRun)
        .where(col(BidPriceRun.status) == RUN_OK)
        .order_by(col(BidPriceRun.solved_at).desc(), col(BidPriceRun.run_id).desc())
        .limit(1)
    ).first()


def latest_run_id(session: Session) -> str | None:
    """One indexed read, the cache check of services.sourcing_policy."""
    return session.exec(
        select(BidPriceRun.run_id)
        .where(col(BidPriceRun.status) == RUN_OK)
        .order_by(col(BidPriceRun.solved_at).desc(), col(BidPriceRun.run_id).desc())
        .limit(1)
    ).first()


def recent_runs(session: Session, limit: int = 10) -> list[BidPriceRun]:
    return list(
        session.exec(select(BidPriceRun).order_by(col(BidPriceRun.solved_at).desc()).limit(limit))
    )


def prices_of(session: Session, run_id: str) -> dict[tuple[str, str], float]:
    rows = session.exec(
        select(BidPrice.node_id, BidPrice.sku, BidPrice.price).where(col(BidPrice.run_id) == run_id)
    )
    return {(node_id, sku): price for node_id, sku, price in rows}


def store_run(session: Session, run: BidPriceRun, prices: Mapping[tuple[str, str], float]) -> None:
    """A successful run replaces every stored price with its own (positive ones only); a failed
    run is recorded and leaves the prices in force alone. In the caller's transaction, so
    readers see the old prices or the new ones, never a mix."""
    if run.status == RUN_OK:
        session.exec(delete(BidPrice))  # type: ignore[call-overload]
    session.add(run)
    session.flush()
    if run.status == RUN_OK:
        session.add_all(
            BidPrice(run_id=run.run_id, node_id=node_id, sku=sku, price=price)
            for (node_id, sku), price in sorted(prices.items())
            if price > 0
        )
    _prune_runs(session)


def _prune_runs(session: Session) -> None:
    old = session.exec(
        select(BidPriceRun.run_id).order_by(col(BidPriceRun.solved_at).desc()).offset(RUNS_KEPT)
    ).all()
    # The run whose prices are in force stays, however many failed runs came after it; every
    # other run's prices are already gone.
    old = [run_id for run_id in old if run_id != latest_run_id(session)]
    if old:
        session.exec(delete(BidPriceRun).where(col(BidPriceRun.run_id).in_(old)))  # type: ignore[call-overload]
