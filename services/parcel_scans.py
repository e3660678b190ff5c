"""Carrier scans for a parcel several orders share (domain.parcels). A grouped parcel's label
is bought under the parcel's id (activities.parcels), so a carrier's scans name the parcel
`P-…`, not a shipment: which shipments such a scan is for, as the parcel tables and the read
model know them, and where each one's event goes.

A scan is for a parcel when a parcel group has that id and that tracking number and the order
it names is one of the parcel's (the order that bought the label, as the carrier was told).
It is then every active member's: each member's shipment gets the event once, routed as a
carrier scan of its own would be (services.callbacks): to its order's workflow while that
runs, to the read model once it has closed, and not again when the workflow already has it.
A member that left the parcel (cancelled, moved away) is not told: it is not in it."""

from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from domain.lifecycle import delivery_scan_goes_to_read_model
from domain.orders import NodeEventType
from ledger import parcels
from ledger.tables import ParcelGroup, ParcelMember
from services.callbacks import shipment_ref

Route = Literal["workflow", "read_model", "duplicate"]


@dataclass(frozen=True, slots=True)
class ParcelScanMember:
    """One shipment a parcel's scan is for, at the parcel's node, and where its event goes."""

    order_id: str
    shipment_id: str
    node_id: str
    route: Route


def parcel_scan_members(
    session: Session,
    order_id: str,
    parcel_id: str,
    tracking_number: str,
    event: NodeEventType,
) -> list[ParcelScanMember] | None:
    """The parcel's active members, by shipment id; None if no parcel has that id and tracking
    number with `order_id` among its orders (the scan is not a parcel's)."""
    group = session.exec(
        select(ParcelGroup).where(
            col(ParcelGroup.parcel_id) == parcel_id,
            col(ParcelGroup.tracking_number) == tracking_number,
        )
    ).first()
    if group is None:
        return None
    named = session.exec(
        select(ParcelMember.shipment_id).where(
            col(ParcelMember.parcel_id) == parcel_id, col(ParcelMember.order_id) == order_id
        )
    ).first()
    if named is None:
        return None
    members = []
    for member in sorted(parcels.active_members(session, parcel_id), key=lambda m: m.shipment_id):
        ref = shipment_ref(session, member.order_id, member.shipment_id)
        route: Route = "workflow"  # the read model may lag the workflow: the order is open
        if ref is not None and ref.node_id is not None:
            if delivery_scan_goes_to_read_model(ref.order_status):
                route = "read_model"
            elif ref.already_taken(event):
                route = "duplicate"
        node_id = ref.node_id if ref is not None and ref.node_id is not None else group.node_id
        members.append(ParcelScanMember(member.order_id, member.shipment_id, node_id, route))
    return members
