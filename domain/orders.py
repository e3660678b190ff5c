"""Orders, lines, shipments and their statuses: the shared vocabulary of intake, workflow and API."""

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from domain.geo import GeoPoint


class OrderType(StrEnum):
    DTC = "dtc"
    B2B = "b2b"
    MARKETPLACE = "marketplace"
    SALES_REP = "sales_rep"


class DeliveryMethod(StrEnum):
    HOME = "home"
    PICKUP = "pickup"


class DeliveryOptionCode(StrEnum):
    """A delivery option the checkout offers, and the sourcing scenario it is planned under."""

    HOME_FAST = "home_fast"  # fastest, by express
    HOME_ECONOMY = "home_economy"  # cheapest
    PICKUP = "pickup"  # local: collected in a store near the customer
    # From incoming stock, by its date: the order waits for the receipt (a channel's pre-orders).
    PREORDER = "preorder"


class OrderStatus(StrEnum):
    RECEIVED = "RECEIVED"
    ALLOCATED = "ALLOCATED"
    RELEASED = "RELEASED"
    IN_FULFILLMENT = "IN_FULFILLMENT"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    BACKORDERED = "BACKORDERED"
    # Ship-partial: some lines are on their way (or shipped), the rest wait for stock.
    PARTIALLY_BACKORDERED = "PARTIALLY_BACKORDERED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


# The one spelling of "closed": the workflow has ended and the status will not change again.
TERMINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.REJECTED}
)


# The statuses of an order waiting for stock: support may retry it, the backorder sweep does.
BACKORDERED_STATUSES = frozenset({OrderStatus.BACKORDERED, OrderStatus.PARTIALLY_BACKORDERED})


class FulfilmentPolicy(StrEnum):
    SHIP_PARTIAL = "ship_partial"  # ship what can go now, backorder the rest
    SHIP_COMPLETE = "ship_complete"  # wait until everything can go together


# What a ship-complete order does once it has waited its deadline: ask a person, or split.
ShipCompleteThen = Literal["ask", "split"]
# How long a ship-complete order waits for every line by default (the brief's 3 days).
SHIP_COMPLETE_WAIT_SECONDS = 3 * 24 * 3600.0


class ShipmentStatus(StrEnum):
    ALLOCATED = "ALLOCATED"
    RELEASED = "RELEASED"
    ACCEPTED = "ACCEPTED"
    PICKED = "PICKED"
    LABELLED = "LABELLED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    REALLOCATED = "REALLOCATED"
    CANCELLED = "CANCELLED"


# What a node system (or a carrier, for `delivered`) reports about a shipment: the values are the
# `node_event` signal's payload and the callback API's `event` field. (A comment, not a docstring:
# pydantic would put a docstring into the API's JSON schema.)
class NodeEventType(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PICKED = "picked"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


OPEN_SHIPMENT_STATUSES = frozenset(
    {
        ShipmentStatus.ALLOCATED,
        ShipmentStatus.RELEASED,
        ShipmentStatus.ACCEPTED,
        ShipmentStatus.PICKED,
        ShipmentStatus.LABELLED,
    }
)
# Once a node has picked, moving the parcel elsewhere costs more than waiting for it.
MOVABLE_SHIPMENT_STATUSES = frozenset(
    {ShipmentStatus.ALLOCATED, ShipmentStatus.RELEASED, ShipmentStatus.ACCEPTED}
)


class Address(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    location: GeoPoint


class Customer(BaseModel):
    customer_id: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=200)


class OrderLine(BaseModel):
    line_no: int = Field(ge=1, le=10_000)
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=10_000)


class Order(BaseModel):
    """An order as accepted at intake; the workflow's input carries it unchanged."""

    order_id: str
    channel: str
    external_id: str
    order_type: OrderType
    priority: int = Field(ge=0, le=9)
    customer: Customer
    ship_to: Address
    delivery_method: DeliveryMethod
    pickup_node_id: str | None = None
    lines: list[OrderLine]
    hold_id: str | None = None  # a checkout hold to convert into this order's reservations
    submitted_at: datetime
    # The checkout's option the customer chose and the date it promised: allocation plans under
    # that option's scenario and keeps that date, or records the promise at risk.
    delivery_option: DeliveryOptionCode | None = None
    promised_date: date | None = None
    # Ship what can go now or wait for every line (None: whole, as orders were before issue 14).
    fulfilment_policy: FulfilmentPolicy | None = None
    # Ship-complete: how long to wait for every line, and what to do then.
    ship_complete_wait_seconds: float = SHIP_COMPLETE_WAIT_SECONDS
    ship_complete_then: ShipCompleteThen = "ask"
    # The buyer's delivery window: not before, no later than (a B2B order's agreed dates).
    requested_not_before: date | None = None
    requested_by: date | None = None
    # The channel's consolidation window at intake: its home-delivery shipment waits this long
    # at most for the customer's other orders to the same address and node, to share a parcel
    # (domain.parcels; 0: never grouped, as orders were before).
    consolidation_window_seconds: float = 0.0


class LineProgress(BaseModel):
    """One line's units: on their way (reserved at a node), shipped, and waiting for stock."""

    line_no: int
    sku: str
    ordered: int
    allocated: int
    shipped: int
    backordered: int


class Shipment(BaseModel):
    shipment_id: str
    node_id: str
    node_type: str
    lines: list[OrderLine]
    status: ShipmentStatus = ShipmentStatus.ALLOCATED
    carrier: str | None = None
    service: str | None = None
    tracking_number: str | None = None
    label_id: str | None = None
    reason: str | None = None
    # The promise this shipment carries: hand it to the carrier by `ship_by`, at the customer's
    # by `promised_date` (None for shipments planned before promises were recorded).
    ship_by: date | None = None
    promised_date: date | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    # The parcel it travels in with the customer's other orders (None: a parcel of its own).
    parcel_id: str | None = None


class TimelineEntry(BaseModel):
    at: datetime
    event: str
    detail: str


class OrderPromise(BaseModel):
    """The order's promise: what the customer was told, and what the current plan can keep.

    `promised_date` is the checkout's date when the order brought one, else the first plan's;
    `planned_date` and `ship_by` follow the current plan. At risk: the plan arrives later."""

    option: DeliveryOptionCode | None = None
    promised_date: date
    ship_by: date
    planned_date: date
    at_risk: bool = False


class OrderState(BaseModel):
    """What the workflow knows about its order; queried by ops and projected to the read model."""

    order: Order
    status: OrderStatus
    version: int = 0
    shipments: list[Shipment] = []
    excluded_nodes: list[str] = []
    # When each node in `excluded_nodes` was (last) excluded: it is forgotten once older than the
    # exclusion setting. Empty for orders started before exclusions expired (issue 14).
    excluded_at: dict[str, datetime] = {}
    waiting_for: str = ""
    # When the current wait escalates (a node's SLA, a backorder's review date); None while the
    # order waits on nothing with a clock, or on a person (then `attention` says why).
    deadline: datetime | None = None
    # Why a person must act now (the `NeedsAttention` search attribute is set while it is): a
    # shipment late after its label, a compensation that failed, a ledger step that cannot succeed.
    attention: str | None = None
    timeline: list[TimelineEntry] = []
    promise: OrderPromise | None = None
    # The newest stock movement id the order's last allocation could have seen: the backorder
    # sweep retries it for movements after it (a feed's date is its business time, not when it
    # arrived). None before the first allocation, and for orders allocated before issue 14.
    stock_seen_movement: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def line_progress(self) -> list[LineProgress]:
        """Per line: units allocated (on their way), shipped (or delivered) and backordered
        (neither: waiting for stock, or for the next allocation)."""
        allocated: dict[int, int] = {}
        shipped: dict[int, int] = {}
        for shipment in self.shipments:
            if shipment.status in _CLOSED_WITHOUT_SHIPPING:
                continue
            into = shipped if shipment.status in _LEFT else allocated
            for line in shipment.lines:
                into[line.line_no] = into.get(line.line_no, 0) + line.quantity
        progress = []
        for line in self.order.lines:
            going = min(allocated.get(line.line_no, 0), line.quantity)
            gone = min(shipped.get(line.line_no, 0), line.quantity - going)
            progress.append(
                LineProgress(
                    line_no=line.line_no,
                    sku=line.sku,
                    ordered=line.quantity,
                    allocated=going,
                    shipped=gone,
                    backordered=line.quantity - going - gone,
                )
            )
        return progress

    def fulfilment_nodes(self) -> list[str]:
        """The nodes serving the order: the `FulfillmentNodes` search attribute's value."""
        return sorted(
            {s.node_id for s in self.shipments if s.status not in _CLOSED_WITHOUT_SHIPPING}
        )


_CLOSED_WITHOUT_SHIPPING = frozenset(
    {
        ShipmentStatus.REJECTED,
        ShipmentStatus.TIMED_OUT,
        ShipmentStatus.REALLOCATED,
        ShipmentStatus.CANCELLED,
    }
)
_LEFT = frozenset({ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED})
