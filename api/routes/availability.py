"""Availability for channels, the checkout check, and checkout holds."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.deps import SessionDep
from api.errors import ApiError
from api.security import AnyCaller, ChannelOrAdmin, channel_of, may_read_order
from domain.availability import SkuAvailability, channel_availability
from domain.errors import UnknownReference
from domain.geo import GeoPoint
from domain.orders import OrderLine
from ledger import holds
from ledger.availability import channel_pool, positions_for
from ledger.availability_cache import AvailabilityCache
from ledger.checkout import HoldRequest, OptionUnavailable, run_checkout_check
from ledger.db import transaction
from ledger.tables import CheckoutHold, Sku
from ledger.thresholds import events_after
from sourcing.checkout import CheckoutAnswer, DeliveryOptionCode, check_cart

router = APIRouter(prefix="/v1", tags=["availability"])


def refuse_unknown_skus(session: SessionDep, skus: set[str], field: str) -> None:
    known = set(session.exec(select(Sku.sku).where(col(Sku.sku).in_(skus))).all())
    if unknown := sorted(skus - known):
        raise UnknownReference(field, unknown)


@router.get("/availability", response_model=list[SkuAvailability])
def availability(
    session: SessionDep,
    caller: AnyCaller,
    sku: Annotated[list[str], Query(min_length=1, max_length=200)],
    channel: Annotated[str | None, Query(max_length=40)] = None,
) -> list[SkuAvailability]:
    """What a channel can sell of each SKU, per node and in total (ATP after safety stock,
    reservations and holds, through the channel's pool)."""
    refuse_unknown_skus(session, set(sku), "sku")
    channel = channel_of(caller, channel)
    pool = channel_pool(session, channel) if channel else None
    by_sku = channel_availability(positions_for(session, set(sku)), pool)
    return [by_sku.get(s, SkuAvailability(sku=s, total=0, by_node={})) for s in sku]


class CheckoutCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=40)
    destination: GeoPoint
    lines: list[OrderLine] = Field(min_length=1, max_length=100)
    hold: bool = Field(default=False, description="hold the stock behind `hold_option`")
    hold_option: DeliveryOptionCode = DeliveryOptionCode.HOME_ECONOMY
    hold_ttl_seconds: int = Field(default=900, ge=1, le=86_400)


class HoldPublic(BaseModel):
    hold_id: str
    expires_at: datetime
    option: DeliveryOptionCode


class CheckoutResult(CheckoutAnswer):
    hold: HoldPublic | None = None


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
        result = await run_in_threadpool(_checkout_in_database, engine, request, now)
    # Serialised once here: the hot path skips FastAPI's second validation of the response.
    return Response(result.model_dump_json(), media_type="application/json")


def answer_from_cache(
    cache: AvailabilityCache, request: CheckoutCheck, now: datetime
) -> CheckoutResult | None:
    """The answer without a hold, from the availability cache; None when the database must
    answer (a hold, the cache still loading, or a SKU it does not know, which may be unknown
    altogether). Shared by this route and the ASGI fast path (`api/checkout_fast_path.py`),
    so both give the same answer."""
    if request.hold or not cache.ready or not all(cache.knows(ln.sku) for ln in request.lines):
        return None
    relevant, totals = cache.checkout_view(request.lines, request.destination, request.channel)
    answer = check_cart(request.lines, request.destination, relevant, now, totals)
    return CheckoutResult(lines=answer.lines, options=answer.options)


def _checkout_in_database(engine: Engine, request: CheckoutCheck, now: datetime) -> CheckoutResult:
    with Session(engine) as session:
        refuse_unknown_skus(session, {ln.sku for ln in request.lines}, "lines.sku")
    hold_request = None
    if request.hold:
        ttl = timedelta(seconds=request.hold_ttl_seconds)
        hold_request = HoldRequest(f"H-{uuid.uuid4().hex[:16]}", request.hold_option, ttl)
    try:
        with transaction(engine) as tx:
            answer, hold = run_checkout_check(
                tx, request.channel, request.lines, request.destination, now, hold_request
            )
    except OptionUnavailable as exc:
        raise ApiError(409, "option_unavailable", str(exc)) from exc
    held = (
        HoldPublic(hold_id=hold.hold_id, expires_at=hold.expires_at, option=request.hold_option)
        if hold
        else None
    )
    return CheckoutResult(lines=answer.lines, options=answer.options, hold=held)


class HoldReleased(BaseModel):
    hold_id: str
    units_released: int


@router.post("/holds/{hold_id}/release", response_model=HoldReleased)
def release_hold(hold_id: str, session: SessionDep, caller: ChannelOrAdmin) -> HoldReleased:
    """The shopper left: give the units back now instead of at expiry. Idempotent."""
    with transaction(session.get_bind()) as tx:  # type: ignore[arg-type]
        hold = tx.get(CheckoutHold, hold_id)
        if hold is None or not may_read_order(caller, hold.channel):
            raise ApiError(404, "hold_not_found", f"no hold {hold_id}")
        units = holds.release_hold(tx, hold_id)
    return HoldReleased(hold_id=hold_id, units_released=units)


class AvailabilityEventPublic(BaseModel):
    id: int
    channel: str
    sku: str
    event: str
    units: int
    at: datetime


@router.get("/availability/events", response_model=list[AvailabilityEventPublic])
def availability_events(
    session: SessionDep,
    caller: AnyCaller,
    after: Annotated[int, Query(ge=0, le=2**62, description="last event id you have seen")] = 0,
    channel: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AvailabilityEventPublic]:
    """Out-of-stock and back-in-stock events for a channel, oldest first; poll with `after`."""
    return [
        AvailabilityEventPublic.model_validate(e, from_attributes=True)
        for e in events_after(session, after, channel_of(caller, channel), limit)
    ]
