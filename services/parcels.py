"""Orders grouped into fewer parcels (issue 14, item 6), one unit of work each.

A home-delivery shipment of a channel with a consolidation window joins the open parcel group
of its customer, address, node and carrier service (domain.parcels decides which), or opens one; it is released
to its node when the group closes. The first member to reach its label step claims the label
and buys it, the others reuse its tracking number and label id; a member cancelled or moved
away leaves the group, and the others ship as they were (a claim it held but had not used is
given back). The order workflow calls these through activities.parcels."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from domain.orders import Address, DeliveryMethod
from domain.parcels import ParcelKey, address_key, closes_at, groupable, still_open
from ledger import parcels as sql
from ledger.db import transaction
from ledger.tables import ParcelMemberStatus


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JoinRequest:
    order_id: str
    shipment_id: str
    channel: str
    customer_id: str
    ship_to: Address
    node_id: str
    units: int
    delivery_method: DeliveryMethod | str
    window_seconds: float
    carrier: str | None = None
    service: str | None = None


@dataclass(frozen=True)
class Joined:
    """The shipment's group (None: it ships alone), when it closes, and the other orders in it
    now."""

    parcel_id: str | None
    closes_at: datetime | None = None
    with_orders: list[str] = field(default_factory=list)


def join_parcel(
    engine: Engine, request: JoinRequest, now: Callable[[], datetime] = _utcnow
) -> Joined:
    """Join the open group of the shipment's key, or open one; idempotent per shipment id (a
    retry answers the group it joined, even once that has closed)."""
    if not groupable(request.delivery_method, request.window_seconds):
        return Joined(parcel_id=None)
    key = ParcelKey(
        channel=request.channel,
        customer_id=request.customer_id,
        address_key=address_key(request.ship_to),
        node_id=request.node_id,
        carrier=request.carrier,
        service=request.service,
    )
    with transaction(engine) as session:
        sql.take_key_turn(session, key)
        known = sql.member(session, request.shipment_id)
        if known is not None:
            found = sql.group(session, known.parcel_id)
            assert found is not None  # a member's foreign key
            return _joined(session, found.parcel_id, sql.as_aware(found.closes_at), request)
        at = now()
        found = sql.open_group(session, key, at)
        if found is None or not still_open(sql.as_aware(found.closes_at), at):
            found = sql.create_group(
                session,
                f"P-{uuid.uuid4().hex[:12].upper()}",
                key,
                opened_at=at,
                closes_at=closes_at(at, request.window_seconds),
            )
        sql.add_member(
            session, found.parcel_id, request.shipment_id, request.order_id, request.units, at
        )
        return _joined(session, found.parcel_id, sql.as_aware(found.closes_at), request)


def _joined(session: Session, parcel_id: str, closing: datetime, request: JoinRequest) -> Joined:
    others = sorted(
        {m.order_id for m in sql.active_members(session, parcel_id)} - {request.order_id}
    )
    return Joined(parcel_id=parcel_id, closes_at=closing, with_orders=others)


@dataclass(frozen=True)
class Left:
    """The group the shipment left (None: it was in none, or had left), and the orders still
    in it."""

    parcel_id: str | None
    remaining_orders: list[str] = field(default_factory=list)


def leave_parcel(engine: Engine, shipment_id: str, now: Callable[[], datetime] = _utcnow) -> Left:
    with transaction(engine) as session:
        known = sql.member(session, shipment_id)
        if known is None or not sql.mark_left(session, shipment_id, now()):
            return Left(parcel_id=None)
        sql.drop_unkept_claim(session, known.parcel_id, shipment_id)
        remaining = sorted({m.order_id for m in sql.active_members(session, known.parcel_id)})
        return Left(parcel_id=known.parcel_id, remaining_orders=remaining)


@dataclass(frozen=True)
class ParcelLabel:
    """What a member does at its label step: `buy` (it holds the claim: buy the label for
    `units`, keyed by the parcel id, then record it), `reuse` (the label below), `wait` (another
    member is buying it now), or `alone` (not in a group any more: its own label)."""

    action: str
    parcel_id: str | None = None
    units: int = 0
    shared_with: list[str] = field(default_factory=list)  # the other orders in the parcel
    claimed_by: str | None = None
    carrier: str | None = None
    service: str | None = None
    tracking_number: str | None = None
    label_id: str | None = None


def label_step(engine: Engine, shipment_id: str) -> ParcelLabel:
    with transaction(engine) as session:
        known = sql.member(session, shipment_id)
        if known is None or known.status != ParcelMemberStatus.ACTIVE:
            return ParcelLabel(action="alone")
        parcel_id = known.parcel_id
        members = sql.active_members(session, parcel_id)
        others = sorted({m.order_id for m in members} - {known.order_id})
        found = sql.group(session, parcel_id)
        assert found is not None
        if found.label_id is not None:
            return ParcelLabel(
                action="reuse",
                parcel_id=parcel_id,
                shared_with=others,
                carrier=found.carrier,
                service=found.service,
                tracking_number=found.tracking_number,
                label_id=found.label_id,
            )
        if sql.claim_label(session, parcel_id, shipment_id):
            return ParcelLabel(
                action="buy",
                parcel_id=parcel_id,
                units=sum(m.units for m in members),
                shared_with=others,
            )
        return ParcelLabel(
            action="wait",
            parcel_id=parcel_id,
            shared_with=others,
            claimed_by=found.label_claimed_by,
        )


def record_parcel_label(
    engine: Engine, parcel_id: str, carrier: str, service: str, tracking_number: str, label_id: str
) -> None:
    with transaction(engine) as session:
        sql.record_label(session, parcel_id, carrier, service, tracking_number, label_id)
