"""The promise-kept measure (ops): per channel and per node, shipped by the ship-by date and
delivered by the promised date, from the order history. services.promise_kept computes it; this
module parses, authorizes and maps."""

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import EngineDep
from api.schemas import (
    SLUG,
    ChannelPromiseKept,
    NodePromiseKept,
    PromiseFiguresPublic,
    PromiseKeptReport,
)
from api.security import require
from domain.promise_kept import PromiseFigures
from security.roles import Role
from services.promise_kept import measure_promise_kept

router = APIRouter(prefix="/v1", tags=["network"], dependencies=[Depends(require(Role.OPS))])


@router.get("/promise-kept", response_model=PromiseKeptReport)
def promise_kept(
    engine: EngineDep,
    since: Annotated[
        date | None, Query(description="first ship-by date; default 30 days ago")
    ] = None,
    until: Annotated[date | None, Query(description="last ship-by date; default none")] = None,
    channel: Annotated[str | None, Query(min_length=1, max_length=40, pattern=SLUG)] = None,
    node_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=SLUG)] = None,
) -> PromiseKeptReport:
    """Of the shipments due (ship-by date) from `since` to `until`: how many shipped by their
    ship-by date and were delivered by their promised date, overall, per channel and per node.
    Read from the order history: a window of weeks, not years (ledger.promise_history)."""
    as_of = datetime.now(UTC).date()
    window, kept = measure_promise_kept(engine, since, until, channel, node_id, as_of)
    return PromiseKeptReport(
        since=window.since or as_of,
        until=window.until,
        channel=channel,
        node_id=node_id,
        as_of=as_of,
        overall=PromiseFiguresPublic(**_figures(kept.overall)),
        channels=[
            ChannelPromiseKept(channel=c, **_figures(f)) for c, f in sorted(kept.by_channel.items())
        ],
        nodes=[NodePromiseKept(node_id=n, **_figures(f)) for n, f in sorted(kept.by_node.items())],
    )


def _figures(figures: PromiseFigures) -> dict[str, int | float | None]:
    return {
        "shipments": figures.shipments,
        "shipped": figures.shipped,
        "shipped_on_time": figures.shipped_on_time,
        "shipped_late": figures.shipped_late,
        "shipped_on_time_share": figures.shipped_on_time_share,
        "average_days_late_shipping": figures.average_days_late_shipping,
        "overdue": figures.overdue,
        "delivered": figures.delivered,
        "delivered_on_time": figures.delivered_on_time,
        "delivered_late": figures.delivered_late,
        "delivered_on_time_share": figures.delivered_on_time_share,
        "average_days_late_delivery": figures.average_days_late_delivery,
        "shipped_undated": figures.shipped_undated,
        "delivered_undated": figures.delivered_undated,
    }
