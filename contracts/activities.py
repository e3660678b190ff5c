"""One input and one result model per activity.

These are what a workflow history records. They own their fields: an activity maps them to a
connector's wire model, so a partner's API changing does not change a history."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from domain.geo import GeoPoint
from domain.orders import Address, DeliveryMethod, DeliveryOptionCode, OrderLine
from domain.sla import NodeSla


class AllocateInput(BaseModel):
    order_id: str
    channel: str = ""
    priority: int = 5
    hold_id: str | None = None
    lines: list[OrderLine]
    destination: GeoPoint
    delivery_method: DeliveryMethod
    pickup_node_id: str | None = None
    excluded_nodes: list[str] = []
    first_shipment_seq: int = 1
    # The option the order was sold with and the date it promised (None: sourced by priority).
    delivery_option: DeliveryOptionCode | None = None
    promised_date: date | None = None
    # Ship-partial: reserve the lines that can go now and report the others (unfilled_lines).
    partial: bool = False
    # The buyer's "not before" date: no shipment is promised earlier, and each says when it is
    # released to its node (release_after_seconds) so it arrives in time, not early.
    requested_not_before: date | None = None
    # A line no node holds whole may be divided between nodes (shipments of pieces). Only
    # workflows that tell pieces apart (Patch.ORDER_DIVIDED_LINES_2026_12) ask for it: an order
    # started before them handles its lines by line number, so a line is sourced whole or not.
    divide_lines: bool = False


class AllocatedShipment(BaseModel):
    shipment_id: str
    node_id: str
    node_type: str
    lines: list[OrderLine]
    distance_km: float
    sla: NodeSla
    # The plan's carrier service and dates (None in results recorded before promises were).
    carrier: str | None = None
    service: str | None = None
    ship_by: date | None = None
    promised_date: date | None = None
    # Wait this long before releasing to the node (a requested not-before date; scaled by the
    # worker's SLA scale), recorded here so a replay waits the same. None: release at once.
    release_after_seconds: float | None = None


class AllocateResult(BaseModel):
    shipments: list[AllocatedShipment] = []
    explanation: str
    backordered: bool = False
    # The latest of the shipments' dates, and whether it is later than the order's promise.
    promised_date: date | None = None
    promise_at_risk: bool = False
    # How long the worker's setting keeps a node excluded from the order
    # (OPENDOM_EXCLUSION_FORGET_SECONDS). Recorded with the result, so the workflow decides from
    # its own history which exclusions have expired; None in results recorded before issue 14.
    exclusion_forget_seconds: float | None = None
    # A partial allocation's lines no node can serve now: still backordered.
    unfilled_lines: list[OrderLine] = []
    # The newest stock movement id when this allocation read the stock: a movement with a later
    # id is news to the order (the backorder sweep). None in results recorded before.
    stock_seen_movement: int | None = None


class NodeIncident(BaseModel):
    """The node failed a shipment (rejected it or missed an SLA): counts toward its health."""

    node_id: str
    shipment_id: str
    kind: str  # a domain.lifecycle.IncidentKind value: "rejected" | "timed_out"
    reason: str


class ReleaseReservationsInput(BaseModel):
    order_id: str
    shipment_ids: list[str] | None = None  # None: every open reservation of the order
    # Recorded in the same transaction as the release, so a retry never counts it twice.
    incident: NodeIncident | None = None


class ReleaseReservationsResult(BaseModel):
    units_released: int


class FulfilReservationsInput(BaseModel):
    order_id: str
    shipment_id: str
    shipped_at: datetime | None = None  # the node's time of `shipped`; None: now
    # The shipment's ship-by date: shipped later, the node's lateness against promise counts in
    # its health (None: no promise recorded).
    node_id: str | None = None
    ship_by: date | None = None


class FulfilReservationsResult(BaseModel):
    units_shipped: int


class ShippedAfterMoveInput(BaseModel):
    """A shipment that had left its node's plan (moved, its reservation released) shipped all the
    same: its units left that node's on hand."""

    order_id: str
    shipment_id: str
    shipped_at: datetime | None = None  # the node's time of `shipped`; None: now


class ShippedAfterMoveResult(BaseModel):
    units: int  # 0 on a retry: the units were already taken off


class ProjectOrderInput(BaseModel):
    """The order's state as the read model stores it, `OrderState.model_dump(mode="json")`:
    made once in the workflow and stored as it is, not validated again field by field."""

    document: dict[str, Any]


class ProjectOrderResult(BaseModel):
    stored: bool


class NodeReleaseInput(BaseModel):
    order_id: str
    shipment_id: str
    node_id: str
    lines: list[OrderLine]
    ship_to: Address
    delivery_method: DeliveryMethod


class NodeReleaseResult(BaseModel):
    node_reference: str | None


class NodeCancelInput(BaseModel):
    order_id: str
    shipment_id: str
    node_id: str
    reason: str


class NodeCancelStatus(StrEnum):
    """What a node answered to a cancel (NodeCancelResult.status)."""

    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # the node never had it: nothing to cancel
    # The node can no longer cancel (it answered 409): the parcel has left, or is leaving. The
    # shipment is then a real shipment, not a move.
    TOO_LATE = "too_late"


class NodeCancelResult(BaseModel):
    status: str


class NodeDispatchInput(BaseModel):
    order_id: str
    shipment_id: str
    node_id: str
    carrier: str
    service: str
    tracking_number: str
    label_id: str


class NodeDispatchResult(BaseModel):
    status: str


class BuyLabelInput(BaseModel):
    order_id: str
    shipment_id: str
    node_id: str
    carrier: str
    service: str
    ship_to: Address
    units: int


class BuyLabelResult(BaseModel):
    label_id: str
    tracking_number: str
    carrier: str
    service: str


class ExpireHoldsInput(BaseModel):
    batch: int = 500


class ExpireHoldsResult(BaseModel):
    expired: int


class PublishAvailabilityEventsInput(BaseModel):
    max_movements: int = 50_000


class PublishAvailabilityEventsResult(BaseModel):
    events: int


class FeedSourcesInput(BaseModel):
    pass


class FeedSourceRef(BaseModel):
    source: str
    url: str
    cursor: str | None


class FeedSourcesResult(BaseModel):
    sources: list[FeedSourceRef]


class PulledStockDelta(BaseModel):
    event_id: str
    node_id: str
    sku: str
    delta: int
    as_of: datetime


class PulledIncomingLine(BaseModel):
    """A purchase order or transfer line pulled with the deltas (connectors.erp): bounded and
    checked when applied, so one bad line is refused by name, never the page."""

    event_id: str
    action: str = "upsert"
    kind: str
    reference: str
    line: int
    node_id: str | None = None
    sku: str | None = None
    quantity: int | None = None
    expected_date: str | None = None  # ISO date, parsed when applied
    from_node_id: str | None = None


class PulledDeltaPage(BaseModel):
    """One page of stock deltas pulled from a source system, and where the next one starts."""

    deltas: list[PulledStockDelta]
    next_cursor: str | None
    # Additive: pages recorded before incoming stock was pulled decode with none.
    incoming: list[PulledIncomingLine] = []


class FetchDeltasInput(BaseModel):
    source: FeedSourceRef


class FetchDeltasResult(BaseModel):
    page: PulledDeltaPage


class ApplyPulledDeltasInput(BaseModel):
    source: str
    cursor: str | None
    page: PulledDeltaPage


class ApplyPulledDeltasResult(BaseModel):
    applied: int
    already_applied: bool
    # incoming lines created, changed or cancelled (results recorded before have none)
    incoming_applied: int = 0


class FindOrdersAtNodeInput(BaseModel):
    node_id: str


class FindOrdersAtNodeResult(BaseModel):
    order_ids: list[str]


class MoveOrderAwayInput(BaseModel):
    order_id: str
    node_id: str
    reason: str


class MoveOrderAwayResult(BaseModel):
    order_id: str
    moved: bool
    why: str = ""


class DegradeUnhealthyNodesInput(BaseModel):
    pass


class DegradedNode(BaseModel):
    node_id: str
    reason: str
    reallocation_workflow_id: str


class DegradeUnhealthyNodesResult(BaseModel):
    degraded: list[DegradedNode]


class SweepBackordersInput(BaseModel):
    # At most this many orders retried by one run; None: the worker's OPENDOM_BACKORDER_SWEEP_BATCH.
    limit: int | None = None


class BackorderRetried(BaseModel):
    order_id: str
    reason: str
    # False: the order refused the retry (it moved on meanwhile, or a retry was under way).
    accepted: bool
    why: str = ""


class SweepBackordersResult(BaseModel):
    retried: list[BackorderRetried] = []


class JoinParcelInput(BaseModel):
    """A home-delivery shipment of a channel with a consolidation window, before its release:
    join the open parcel of its customer, address, node and carrier service, or open one."""

    order_id: str
    shipment_id: str
    channel: str
    customer_id: str
    ship_to: Address
    node_id: str
    units: int
    delivery_method: DeliveryMethod
    window_seconds: float  # the channel's, as the order was taken (the worker scales it)
    # The carrier service the shipment will ship on (None: a join recorded before it was sent).
    carrier: str | None = None
    service: str | None = None


class JoinParcelResult(BaseModel):
    parcel_id: str | None = None  # None: the shipment ships alone
    closes_at: datetime | None = None  # when the parcel is released to its node
    with_orders: list[str] = []  # the other orders in the parcel when it joined


class LeaveParcelInput(BaseModel):
    shipment_id: str


class LeaveParcelResult(BaseModel):
    parcel_id: str | None = None  # None: it was in no parcel (or had left)
    remaining_orders: list[str] = []


class ParcelLabelResult(BaseModel):
    """The parcel's one label: bought by this shipment (`bought`), or reused from the member
    that bought it; `parcel_id` None when the shipment was in no parcel any more (its own label
    was bought)."""

    label_id: str
    tracking_number: str
    carrier: str
    service: str
    parcel_id: str | None = None
    bought: bool = True
    shared_with: list[str] = []  # the other orders travelling in the parcel
