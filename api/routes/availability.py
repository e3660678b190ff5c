"""Availability for channels, the checkout check, and checkout holds. The checkout's units of work
are services.checkout's; this module parses, authorizes and maps."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from api.deps import EngineDep, SessionDep
from api.schemas import (
    AvailabilityEventPublic,
    CheckoutCheck,
    CheckoutResult,
    HoldIdPath,
    HoldPublic,
    HoldReleased,
    SkuAvailability,
)
from api.security import AvailabilityReader, ChannelOrAdmin, channel_of, may_read_order
from domain.availability import channel_availability
from domain.incoming import incoming_by_date
from ledger.availability import channel_pool, positions_for
from ledger.availability_cache import AvailabilityCache
from ledger.holds import HoldLimit
from ledger.incoming import open_incoming
from ledger.thresholds import events_after
from services import checkout
from services.checkout import HoldTerms
from services.references import refuse_unknown_skus

router = APIRouter(prefix="/v1", tags=["availability"])


@router.get("/availability", response_model=list[SkuAvailability])
def availability(
    session: SessionDep,
    caller: AvailabilityReader,
    sku: Annotated[list[str], Query(min_length=1, max_length=200)],
    channel: Annotated[str | None, Query(max_length=40)] = None,
) -> list[SkuAvailability]:
    """What a channel can sell of each SKU, per node and in total (ATP after safety stock,
    reservations and holds, through the channel's pool), and `incoming`: the open purchase
    order and transfer units due at the nodes it sells from, by expected date. Available on a
    date D is `total` plus the incoming units dated D or earlier (domain.incoming.available_on)."""
    refuse_unknown_skus(session, sku, "sku")
    channel = channel_of(caller, channel)
    pool = channel_pool(session, channel) if channel else None
    by_sku = channel_availability(positions_for(session, set(sku)), pool)
    coming = incoming_by_date(open_incoming(session, set(sku)), pool)
    answer = []
    for s in sku:
        now = by_sku.get(s)
        answer.append(
            SkuAvailability(
                sku=s,
                total=now.total if now else 0,
                by_node=now.by_node if now else {},
                incoming=coming.get(s, []),
            )
        )
    return answer


@router.post("/checkout/check", response_model=CheckoutResult)
async def checkout_check(request: CheckoutCheck, http: Request, caller: ChannelOrAdmin) -> Response:
    """Per line: available or not; delivery options with promised dates; optionally a hold
    (pass its `hold_id` when submitting the order to convert it with no gap).

    Without a hold the answer comes from the in-process availability cache (it trails the
    ledger by ~50 ms); a hold always goes to the database, which never oversells."""
    channel_of(caller, request.channel)
    now = datetime.now(UTC)
    result = answer_from_cache(http.app.state.availability_cache, request, now)
    if result is None:
        engine = http.app.state.engine
        settings = http.app.state.settings
        limit = HoldLimit(settings.max_held_share_per_channel, settings.held_units_always_allowed)
        result = await run_in_threadpool(_checkout_in_database, engine, request, now, limit)
    # Serialised once here: the hot path skips FastAPI's second validation of the response.
    return Response(result.model_dump_json(), media_type="application/json")


def answer_from_cache(
    cache: AvailabilityCache, request: CheckoutCheck, now: datetime
) -> CheckoutResult | None:
    """The answer without a hold, from the availability cache; None when the database must
    answer (a hold, the cache still loading, or a SKU it does not know). Shared by this route
    and the ASGI fast path (`api/checkout_fast_path.py`), so both give the same answer."""
    if request.hold:
        return None
    answer = checkout.answer_from_cache(
        cache, request.channel, request.lines, request.destination, now
    )
    if answer is None:
        return None
    return CheckoutResult(lines=answer.lines, options=answer.options)


def _checkout_in_database(
    engine: Engine, request: CheckoutCheck, now: datetime, limit: HoldLimit
) -> CheckoutResult:
    terms = None
    if request.hold:
        ttl = timedelta(seconds=request.hold_ttl_seconds)
        terms = HoldTerms(request.hold_option, ttl, limit)
    outcome = checkout.check_in_database(
        engine, request.channel, request.lines, request.destination, now, terms
    )
    answer, hold = outcome.answer, outcome.hold
    held = (
        HoldPublic(hold_id=hold.hold_id, expires_at=hold.expires_at, option=hold.option)
        if hold
        else None
    )
    return CheckoutResult(lines=answer.lines, options=answer.options, hold=held)


@router.post("/holds/{hold_id}/release", response_model=HoldReleased)
def release_hold(hold_id: HoldIdPath, engine: EngineDep, caller: ChannelOrAdmin) -> HoldReleased:
    """The shopper left: give the units back now instead of at expiry. Idempotent."""
    units = checkout.release_hold(engine, hold_id, lambda channel: may_read_order(caller, channel))
    return HoldReleased(hold_id=hold_id, units_released=units)


@router.get("/availability/events", response_model=list[AvailabilityEventPublic])
def availability_events(
    session: SessionDep,
    caller: AvailabilityReader,
    # The event id is a 32-bit integer column on PostgreSQL: a larger `after` was a DataError.
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="last event id you have seen")] = 0,
    channel: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AvailabilityEventPublic]:
    """Out-of-stock and back-in-stock events for a channel, oldest first; poll with `after`."""
    return [
        AvailabilityEventPublic.model_validate(e, from_attributes=True)
        for e in events_after(session, after, channel_of(caller, channel), limit)
    ]
