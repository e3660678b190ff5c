"""Models at the API edge, every route's in one place, by area. Requests are `Strict`: unknown
fields are refused so a typo cannot silently drop data. Responses are models of their own, never
tables (`api.schemas.Node`, not `ledger.tables.Node`), so a new column is not published by
accident."""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from domain.availability import SkuAvailability as DomainSkuAvailability
from domain.geo import GeoPoint
from domain.incoming import IncomingUnits
from domain.node_status import NodeStatus
from domain.orders import (
    SHIP_COMPLETE_WAIT_SECONDS,
    Address,
    Customer,
    DeliveryMethod,
    DeliveryOptionCode,
    FulfilmentPolicy,
    NodeEventType,
    OrderLine,
    OrderType,
    ShipCompleteThen,
)
from ledger.tables import IncomingKind, utcnow
from services.feeds import FeedMode
from sourcing.checkout import CheckoutAnswer

SLUG = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
# How far ahead an order may ask to be delivered or promised.
MAX_DATE_AHEAD = timedelta(days=366)

# Path parameters, checked before the database sees them: PostgreSQL refuses a value longer
# than its column (a DataError, a 500 where it reaches a write). Lengths are the columns'.
SourcePath = Annotated[str, Path(min_length=1, max_length=64, pattern=SLUG)]  # FeedEvent.source
ChannelPath = Annotated[str, Path(min_length=1, max_length=40, pattern=SLUG)]
HoldIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=SLUG)]
KeyIdPath = Annotated[str, Path(min_length=1, max_length=32, pattern=SLUG)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- orders and support actions (api/routes/orders.py) ---


class OrderSubmission(Strict):
    channel: str = Field(min_length=1, max_length=40, pattern=SLUG, examples=["web"])
    external_id: str = Field(min_length=1, max_length=100, pattern=SLUG, examples=["1001"])
    order_type: OrderType = OrderType.DTC
    priority: int = Field(default=5, ge=0, le=9, description="0 lowest, 9 most urgent")
    customer: Customer
    ship_to: Address
    delivery_method: DeliveryMethod = DeliveryMethod.HOME
    pickup_node_id: str | None = Field(default=None, max_length=64)
    lines: list[OrderLine] = Field(min_length=1, max_length=200)
    hold_id: str | None = Field(
        default=None, max_length=64, description="from the checkout check: converts the hold"
    )
    delivery_option: DeliveryOptionCode | None = Field(
        default=None,
        description="the checkout option the customer chose (with a hold: the hold's by default)",
    )
    promised_date: date | None = Field(
        default=None, description="the date that option promised: allocation keeps it or says"
    )
    fulfilment_policy: FulfilmentPolicy | None = Field(
        default=None,
        description="ship_partial: ship what can go now, backorder the rest; ship_complete: wait "
        "for every line (default: the channel's)",
    )
    ship_complete_wait_seconds: float | None = Field(
        default=None,
        gt=0,
        le=90 * 24 * 3600,
        description="ship_complete: how long to wait for every line before ship_complete_then "
        f"(default: the channel's, else {SHIP_COMPLETE_WAIT_SECONDS:g} s)",
    )
    ship_complete_then: ShipCompleteThen | None = Field(
        default=None,
        description="ship_complete past its wait: ask a person, or split (default: the "
        "channel's, else ask)",
    )
    requested_not_before: date | None = Field(
        default=None, description="deliver no earlier: released to the node in time, not at once"
    )
    requested_by: date | None = Field(
        default=None, description="deliver no later: the promise is planned for it"
    )

    @field_validator("requested_not_before", "requested_by", "promised_date")
    @classmethod
    def _within_a_year(cls, day: date | None) -> date | None:
        # A typo (2062 for 2026) would reserve the stock for decades behind a durable timer.
        if day is not None and day > datetime.now(UTC).date() + MAX_DATE_AHEAD:
            raise ValueError(f"{day} is more than {MAX_DATE_AHEAD.days} days ahead")
        return day

    @model_validator(mode="after")
    def _requested_window_is_a_window(self) -> "OrderSubmission":
        before, by = self.requested_not_before, self.requested_by
        if before is not None and by is not None and before > by:
            raise ValueError("requested_not_before is after requested_by")
        return self

    @field_validator("delivery_option")
    @classmethod
    def _option_matches_the_delivery_method(
        cls, option: DeliveryOptionCode | None, info: ValidationInfo
    ) -> DeliveryOptionCode | None:
        method = info.data.get("delivery_method")
        if option is not None and (option == DeliveryOptionCode.PICKUP) != (
            method == DeliveryMethod.PICKUP
        ):
            raise ValueError(f"{option} does not match delivery_method {method}")
        return option


class OrderAccepted(BaseModel):
    order_id: str
    status: str
    duplicate: bool = Field(description="true when this channel and external id were seen before")
    links: dict[str, str]


class SupportAction(Strict):
    reason: str = Field(min_length=1, max_length=500)


class ReallocateAction(SupportAction):
    node_id: str | None = Field(default=None, description="only shipments at this node")


# --- node and carrier callbacks (api/routes/callbacks.py) ---


class NodeCallback(Strict):
    order_id: str = Field(min_length=1, max_length=200)
    shipment_id: str = Field(min_length=1, max_length=220)
    event: NodeEventType
    reason: str | None = Field(default=None, max_length=500)
    tracking_number: str | None = Field(default=None, max_length=100)
    event_id: str | None = Field(default=None, max_length=100)
    occurred_at: datetime | None = None


class CarrierCallback(Strict):
    order_id: str = Field(min_length=1, max_length=200)
    shipment_id: str = Field(min_length=1, max_length=220)
    tracking_number: str = Field(min_length=1, max_length=100)
    event: NodeEventType = NodeEventType.DELIVERED


class CallbackAccepted(BaseModel):
    order_id: str
    shipment_id: str
    routed_to: str


# --- nodes and stock positions (api/routes/network.py) ---


# A node as ops see it: the columns of ledger.tables.Node, in its order, with its defaults and
# limits, so the published schema (`Node`) is the one the table published before it had a model
# of its own. The route imports the table as `NodeRow`.
class Node(BaseModel):
    node_id: str = Field(max_length=64)
    name: str
    node_type: str
    lat: float
    lon: float
    can_ship: bool = True
    can_pickup: bool = False
    daily_capacity: int = 1000
    priority: int = 100
    active: bool = True
    status: str = NodeStatus.UP
    status_reason: str | None = None
    system_url: str = Field(description="empty for a simulator node (connector_kind)")
    connector_kind: str = "opendom-http"
    credential_ref: str | None = Field(default=None, description="env:NAME or file:/path")
    enabled: bool = Field(default=True, description="false: deactivated, out of sourcing")
    can_ship_to_store: bool = False
    address_line1: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    working_days: list[int] = Field(default=[0, 1, 2, 3, 4], description="0 = Monday")
    holidays: list[date] = []
    cutoff_time: str = Field(default="14:00", description="local time, HH:MM")
    timezone: str = "UTC"
    processing_days: int = 0
    accept_sla_seconds: float | None = None
    pick_sla_seconds: float | None = None
    ship_sla_seconds: float | None = None
    safety_stock: int | None = None
    updated_at: datetime | None = None


class NodeStatusChangePublic(BaseModel):
    """Every change of a node's status, by a person or by the node-health rule: the audit trail,
    and the point from which the rule counts incidents again after a node comes back."""

    # The columns of ledger.tables.NodeStatusChange, with its defaults and limits.
    id: int | None = None
    node_id: str = Field(max_length=64)
    status: str
    reason: str
    automatic: bool = False
    at: datetime = Field(default_factory=utcnow)


class NodeStatusChange(Strict):
    status: NodeStatus
    reason: str = Field(min_length=1, max_length=300)
    reallocate_unpicked: bool | None = Field(
        default=None,
        description="move the node's unpicked orders to other nodes; default: yes when down, "
        "no when degraded (it finishes what it has and takes nothing new), never when up",
    )


class NodeStatusChanged(BaseModel):
    node_id: str
    status: NodeStatus
    reallocation_workflow_id: str | None = Field(
        description="the NodeOutage workflow moving this node's unpicked orders, if down"
    )


class StockAdjustment(Strict):
    node_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    delta: int = Field(ge=-1_000_000, le=1_000_000, description="units received (+) or removed (-)")
    reason: str = Field(min_length=1, max_length=200)


class StockPositionPublic(BaseModel):
    node_id: str
    sku: str
    on_hand: int
    reserved: int
    held: int
    safety_stock: int
    available: int


# --- availability, the checkout check and holds (api/routes/availability.py) ---


class CheckoutCheck(Strict):
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


class HoldReleased(BaseModel):
    hold_id: str
    units_released: int


class AvailabilityEventPublic(BaseModel):
    id: int
    channel: str
    sku: str
    event: str
    units: int
    at: datetime


# --- stock feeds, channel pools, reconciliation (api/routes/feeds.py) ---


class SnapshotPosition(Strict):
    sku: str = Field(min_length=1, max_length=64)
    on_hand: int = Field(ge=0, le=1_000_000_000)


class Snapshot(Strict):
    event_id: str = Field(min_length=1, max_length=200)
    node_id: str = Field(min_length=1, max_length=64)
    as_of: datetime
    mode: FeedMode = FeedMode.ALL_OR_NOTHING
    positions: list[SnapshotPosition] = Field(max_length=500_000)


class Delta(Strict):
    event_id: str = Field(min_length=1, max_length=200)
    node_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    delta: int = Field(ge=-1_000_000, le=1_000_000)
    as_of: datetime


class Deltas(Strict):
    mode: FeedMode = FeedMode.ALL_OR_NOTHING
    deltas: list[Delta] = Field(min_length=1, max_length=100_000)


class RefusedLine(BaseModel):
    line: int
    reason: str


class FeedResult(BaseModel):
    applied: int
    replayed: int = 0
    stale: int = 0
    refused: list[RefusedLine] = []


class ChannelPoolBody(Strict):
    node_types: list[str] | None = None
    node_ids: list[str] | None = None
    share_by_node_type: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    cap_by_node_type: dict[str, Annotated[int, Field(ge=0, le=10**9)]] = Field(default_factory=dict)


class Reconciliation(BaseModel):
    balanced: bool
    drifts: list[str]


# --- every refusal (api/errors.py) ---


class ErrorBody(BaseModel):
    error: str
    message: str


# --- promise kept (api/routes/promise.py) ---


class PromiseFiguresPublic(BaseModel):
    """Of the shipments with a promise due in the window: shipped by the ship-by date, delivered
    by the promised date (dates compared in UTC). Shares are of what shipped (was delivered),
    null while nothing has; averages are over the late ones."""

    shipments: int = Field(description="shipments with a promise due in the window")
    shipped: int = Field(description="shipped, with the time the node reported")
    shipped_on_time: int
    shipped_late: int
    shipped_on_time_share: float | None
    average_days_late_shipping: float | None
    overdue: int = Field(description="not shipped yet and past the ship-by date")
    delivered: int = Field(description="delivered, with the time the carrier reported")
    delivered_on_time: int
    delivered_late: int
    delivered_on_time_share: float | None
    average_days_late_delivery: float | None
    shipped_undated: int = Field(description="shipped, the time not recorded: in no share")
    delivered_undated: int = Field(description="delivered, the time not recorded: in no share")


class ChannelPromiseKept(PromiseFiguresPublic):
    channel: str


class NodePromiseKept(PromiseFiguresPublic):
    node_id: str


class PromiseKeptReport(BaseModel):
    since: date = Field(description="first ship-by date measured")
    until: date | None = Field(description="last ship-by date measured; null: no end")
    channel: str | None
    node_id: str | None
    as_of: date = Field(description="the day unshipped shipments are overdue against (UTC)")
    overall: PromiseFiguresPublic
    channels: list[ChannelPromiseKept] = Field(description="by channel, sorted")
    nodes: list[NodePromiseKept] = Field(description="by node, sorted")


# --- incoming stock and receipts (api/routes/incoming.py), stock by date (availability) ---


class IncomingLinePush(Strict):
    """One purchase order or transfer line: created or changed (`upsert`) or cancelled."""

    event_id: str = Field(min_length=1, max_length=200)
    action: Literal["upsert", "cancel"] = "upsert"
    kind: IncomingKind
    reference: str = Field(min_length=1, max_length=120, description="PO number or transfer id")
    line: int = Field(ge=1, le=1_000_000)
    node_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="where it arrives; a cancel may omit it",
    )
    sku: str | None = Field(default=None, min_length=1, max_length=64)
    # bounded like a delta: the counters it adds to are 32-bit on PostgreSQL
    quantity: int | None = Field(default=None, ge=1, le=1_000_000)
    expected_date: date | None = Field(default=None, description="required on a new line")
    from_node_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="a transfer's origin"
    )


class IncomingFeed(Strict):
    mode: FeedMode = FeedMode.ALL_OR_NOTHING
    lines: list[IncomingLinePush] = Field(min_length=1, max_length=100_000)


class ReceiptPush(Strict):
    """Goods received against an incoming line, in full or in part."""

    event_id: str = Field(min_length=1, max_length=200)
    kind: IncomingKind
    reference: str = Field(min_length=1, max_length=120)
    line: int = Field(ge=1, le=1_000_000)
    quantity: int = Field(ge=1, le=1_000_000)
    received_at: datetime


class Receipts(Strict):
    mode: FeedMode = FeedMode.ALL_OR_NOTHING
    receipts: list[ReceiptPush] = Field(min_length=1, max_length=100_000)


class SkuAvailability(DomainSkuAvailability):
    """What a channel can sell of a SKU now, and what open purchase orders and transfers bring
    to the nodes it sells from, by expected date (a past date: the goods are late)."""

    incoming: list[IncomingUnits] = Field(default_factory=list)
