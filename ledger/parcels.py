"""Parcel groups in SQL (services.parcels decides when to call what): shipments of one
customer to one address at one node that travel as one parcel, on one carrier service, their
members and their label. A group's `carrier` and `service` are its key's from its opening (the
service its members ship on), then the bought label's.

Every write is idempotent per shipment (a member row is keyed by its shipment id) or a
conditional UPDATE (the label claim), so an activity retried after a crash changes nothing."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, text, update
from sqlmodel import Session, col, select

from domain.parcels import ParcelKey
from ledger.tables import ParcelGroup, ParcelMember, ParcelMemberStatus


def take_key_turn(session: Session, key: ParcelKey) -> None:
    """PostgreSQL: one join per key at a time, so two orders of one customer joining at once
    find one group, not two. SQLite has one writer at a time already; a hash collision only
    makes two keys take turns."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("select pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"opendom.parcel|{key.channel}|{key.customer_id}|{key.node_id}|{key.address_key}"},
    )


def member(session: Session, shipment_id: str) -> ParcelMember | None:
    return session.get(ParcelMember, shipment_id)


def group(session: Session, parcel_id: str) -> ParcelGroup | None:
    return session.get(ParcelGroup, parcel_id)


def open_group(session: Session, key: ParcelKey, now: datetime) -> ParcelGroup | None:
    """The key's group still taking members: its window not closed, its label not yet bought
    (a group that reached its label step is leaving the node, whatever the clock says)."""
    query = (
        select(ParcelGroup)
        .where(
            col(ParcelGroup.channel) == key.channel,
            col(ParcelGroup.customer_id) == key.customer_id,
            col(ParcelGroup.address_key) == key.address_key,
            col(ParcelGroup.node_id) == key.node_id,
            _same(col(ParcelGroup.carrier), key.carrier),
            _same(col(ParcelGroup.service), key.service),
            col(ParcelGroup.closes_at) > now,
            col(ParcelGroup.label_claimed_by).is_(None),
        )
        .order_by(col(ParcelGroup.opened_at))
        .limit(1)
    )
    return session.exec(query).first()


def _same(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


def create_group(
    session: Session, parcel_id: str, key: ParcelKey, opened_at: datetime, closes_at: datetime
) -> ParcelGroup:
    row = ParcelGroup(
        parcel_id=parcel_id,
        channel=key.channel,
        customer_id=key.customer_id,
        address_key=key.address_key,
        node_id=key.node_id,
        carrier=key.carrier,
        service=key.service,
        opened_at=opened_at,
        closes_at=closes_at,
    )
    session.add(row)
    session.flush()
    return row


def add_member(
    session: Session, parcel_id: str, shipment_id: str, order_id: str, units: int, now: datetime
) -> ParcelMember:
    row = ParcelMember(
        shipment_id=shipment_id, parcel_id=parcel_id, order_id=order_id, units=units, joined_at=now
    )
    session.add(row)
    session.flush()
    return row


def active_members(session: Session, parcel_id: str) -> Sequence[ParcelMember]:
    query = (
        select(ParcelMember)
        .where(
            col(ParcelMember.parcel_id) == parcel_id,
            col(ParcelMember.status) == ParcelMemberStatus.ACTIVE,
        )
        .order_by(col(ParcelMember.joined_at), col(ParcelMember.shipment_id))
    )
    return session.exec(query).all()


def mark_left(session: Session, shipment_id: str, now: datetime) -> bool:
    """True when this call took the member out (once: a retry finds it gone)."""
    result = session.execute(
        update(ParcelMember)
        .where(
            col(ParcelMember.shipment_id) == shipment_id,
            col(ParcelMember.status) == ParcelMemberStatus.ACTIVE,
        )
        .values(status=ParcelMemberStatus.LEFT, left_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def drop_unkept_claim(session: Session, parcel_id: str, shipment_id: str) -> None:
    """A member that claimed the label and left before buying it gives the claim back."""
    session.execute(
        update(ParcelGroup)
        .where(
            col(ParcelGroup.parcel_id) == parcel_id,
            col(ParcelGroup.label_claimed_by) == shipment_id,
            col(ParcelGroup.label_id).is_(None),
        )
        .values(label_claimed_by=None)
    )


def claim_label(session: Session, parcel_id: str, shipment_id: str) -> bool:
    """The atomic claim: True for the one member that buys the parcel's label (again, for the
    same member retrying), False for every other."""
    result = session.execute(
        update(ParcelGroup)
        .where(
            col(ParcelGroup.parcel_id) == parcel_id,
            or_(
                col(ParcelGroup.label_claimed_by).is_(None),
                col(ParcelGroup.label_claimed_by) == shipment_id,
            ),
        )
        .values(label_claimed_by=shipment_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_label(
    session: Session,
    parcel_id: str,
    carrier: str,
    service: str,
    tracking_number: str,
    label_id: str,
) -> None:
    """The bought label, kept once (a second recording of the same purchase changes nothing)."""
    session.execute(
        update(ParcelGroup)
        .where(col(ParcelGroup.parcel_id) == parcel_id, col(ParcelGroup.label_id).is_(None))
        .values(
            carrier=carrier, service=service, tracking_number=tracking_number, label_id=label_id
        )
    )


def as_aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
