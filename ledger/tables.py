"""SQL tables. Counters on stock positions are only ever changed by conditional UPDATEs
(see ledger.stock); reservations are rows keyed by order, line and node so retries are idempotent."""

from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.node_status import NodeStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class Node(SQLModel, table=True):
    node_id: str = Field(primary_key=True, max_length=64)
    name: str
    node_type: str = Field(index=True)  # domain.network.NodeType
    lat: float
    lon: float
    can_ship: bool = True
    can_pickup: bool = False
    daily_capacity: int = 1000
    priority: int = 100
    active: bool = True  # eligible for sourcing; false while the node is down or degraded
    status: str = NodeStatus.UP
    status_reason: str | None = None
    system_url: str  # the node's WMS / store / 3PL endpoint
    # How OpenDOM talks to the node's system (connectors.nodes), and where its credential is
    # kept: a reference such as `env:RENO_WMS_TOKEN`, never the secret itself.
    connector_kind: str = Field(default="opendom-http", max_length=40)
    credential_ref: str | None = Field(default=None, max_length=200)
    # Configuration, not health: a deactivated node is out of sourcing whatever its status.
    enabled: bool = True
    can_ship_to_store: bool = False  # receives store transfers for collection
    address_line1: str | None = None
    city: str | None = None
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=2)
    # The working calendar the promise counts in: weekdays (0 = Monday), holidays (ISO dates),
    # the local cut-off time for same-day work and the node's time zone (IANA name).
    working_days: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4], sa_column=Column(JSON, nullable=False)
    )
    holidays: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cutoff_time: str = Field(default="14:00", max_length=5)
    timezone: str = Field(default="UTC", max_length=64)
    processing_days: int = 0
    updated_at: datetime = Field(default_factory=utcnow)
    accept_sla_seconds: float | None = None  # None: the node type's default
    pick_sla_seconds: float | None = None
    ship_sla_seconds: float | None = None
    safety_stock: int | None = None  # None: the node type's default (NodeTypePolicy)


class NodeTypePolicy(SQLModel, table=True):
    node_type: str = Field(primary_key=True)
    safety_stock: int = 0


class Sku(SQLModel, table=True):
    """A catalogue item, fed by the PIM (services.catalogue): what sourcing and labels need."""

    sku: str = Field(primary_key=True, max_length=64)
    name: str
    unit_price: float = 0.0  # the unit value: order value, declared value, split costs
    description: str | None = None
    weight_kg: float | None = None
    length_cm: float | None = None
    width_cm: float | None = None
    height_cm: float | None = None
    ship_alone: bool = False  # travels in its own parcel
    oversize: bool = False
    active: bool = True  # inactive: no new orders or checkout quotes; stock stays in the ledger
    updated_at: datetime = Field(default_factory=utcnow)


class Channel(SQLModel, table=True):
    """A sales channel and how its orders are served; its stock pool is ChannelPool."""

    channel: str = Field(primary_key=True, max_length=40)
    name: str
    channel_type: str  # domain.orders.OrderType: dtc | marketplace | b2b | sales_rep
    ruleset: str | None = Field(default=None, max_length=64)
    # sourcing.Scenario; None: by the order (sourcing.allocation.scenario_for)
    default_scenario: str | None = Field(default=None, max_length=20)
    # What the promise does when not every line can go now (an order may override it).
    fulfilment_policy: str = Field(default="ship_partial", max_length=20)
    # Ship-complete orders: how long they wait for every line, then "ask" a person or "split".
    ship_complete_wait_seconds: float = 3 * 24 * 3600.0
    ship_complete_then: str = Field(default="ask", max_length=10)
    # The checkout may promise from incoming stock with its date; such orders wait for the receipt.
    allow_preorders: bool = False
    # Source with the inventory-aware bid prices the schedule refreshes (sourcing.bid_prices).
    inventory_aware: bool = False
    active: bool = True
    # Its home-delivery orders of one customer to one address, at one node, allocated within
    # this many seconds of each other ship as one parcel (0: never grouped). domain.parcels.
    consolidation_window_seconds: float = 0.0
    # Each allocation of its orders uses at most this many nodes (None: no limit; a ship-partial
    # order's later allocations count afresh); sourcing.model.Rule.max_splits.
    max_shipments_per_order: int | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class CarrierServiceRow(SQLModel, table=True):
    """A carrier's service: its transit model (days by distance band) and the daily cut-off by
    which a parcel must be handed over to leave that day."""

    __tablename__ = "carrierservice"

    carrier: str = Field(primary_key=True, max_length=40)
    service: str = Field(primary_key=True, max_length=40)
    name: str
    # [{"max_km": 150, "days": 1}, ...]: the last band covers every longer distance.
    transit_bands: list[dict] = Field(sa_column=Column(JSON, nullable=False))
    cutoff_time: str = Field(default="17:00", max_length=5)
    active: bool = True
    updated_at: datetime = Field(default_factory=utcnow)


class ConfigChange(SQLModel, table=True):
    """The audit trail of configuration: who changed which node, SKU, channel, carrier or API
    client, when, and what each field was before and after."""

    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(index=True, max_length=20)  # node | sku | channel | pool | carrier | ...
    entity_id: str = Field(index=True, max_length=120)
    action: str = Field(max_length=20)  # create | update | deactivate | revoke | rotate | import
    actor: str = Field(max_length=120)  # the API key's id and name, or `cli:<user>`
    changes: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, index=True)


class StockPosition(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("node_id", "sku"),)

    id: int | None = Field(default=None, primary_key=True)
    node_id: str = Field(foreign_key="node.node_id", index=True)
    sku: str = Field(foreign_key="sku.sku", index=True)
    on_hand: int = 0
    reserved: int = 0  # hard reservations of orders
    held: int = 0  # soft checkout holds
    # Units on open purchase orders and transfers due to arrive here (IncomingLine): never part
    # of ATP; a receipt moves them to on hand in one movement (ledger.incoming).
    incoming: int = 0
    # Effective safety stock: the position's override, else the node's, else the node type's
    # (kept current by ledger.safety.refresh_safety_stock so reservations need no joins).
    safety_stock: int = 0
    safety_override: int | None = None
    snapshot_as_of: datetime | None = None  # as-of time of the last full snapshot applied
    updated_at: datetime = Field(default_factory=utcnow)


# Status and kind constants are StrEnums: each member is its stored string, so columns stay `str`
# and rows written before read back the same.
class MovementKind(StrEnum):
    SNAPSHOT = "snapshot"
    DELTA = "delta"
    ADJUSTMENT = "adjustment"
    RESERVATION = "reservation"
    RELEASE = "release"
    SHIPMENT = "shipment"
    HOLD = "hold"
    HOLD_RELEASE = "hold_release"
    HOLD_EXPIRY = "hold_expiry"
    HOLD_CONVERSION = "hold_conversion"
    # No counter moves: the effective safety stock changed (a node's or its type's default),
    # which changes what is available; readers that tail movements (the checkout's cache)
    # re-read the position.
    SAFETY = "safety"
    # Incoming stock (ledger.incoming): a purchase order or transfer line created, changed or
    # cancelled moves `incoming` only; a receipt moves incoming to on hand in one movement.
    INCOMING = "incoming"
    RECEIPT = "receipt"


class StockMovement(SQLModel, table=True):
    """Append-only ledger entry: every change of a position's counters, with its cause.
    Summing a position's entries rebuilds its counters (ledger.audit.reconcile)."""

    id: int | None = Field(default=None, primary_key=True)
    node_id: str = Field(index=True)
    sku: str = Field(index=True)
    kind: str
    d_on_hand: int = 0
    d_reserved: int = 0
    d_held: int = 0
    d_incoming: int = 0
    cause: str = Field(max_length=300)  # order / hold / feed event that caused it
    at: datetime = Field(default_factory=utcnow, index=True)


class FeedEvent(SQLModel, table=True):
    """Feed messages already applied, by source and the source's own event id: replays no-op."""

    __table_args__ = (UniqueConstraint("source", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64)
    event_id: str = Field(max_length=200)
    applied_at: datetime = Field(default_factory=utcnow)


class HoldStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    EXPIRED = "expired"
    CONVERTED = "converted"


class CheckoutHold(SQLModel, table=True):
    hold_id: str = Field(primary_key=True, max_length=64)
    channel: str
    status: str = Field(default=HoldStatus.ACTIVE, index=True)
    expires_at: datetime = Field(index=True)
    order_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # The checkout option held and the date it promised: an order submitted with the hold and
    # without an option of its own carries these.
    option: str | None = Field(default=None, max_length=20)
    promised_date: date | None = None


class HoldLine(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("hold_id", "line_no", "node_id"),)

    id: int | None = Field(default=None, primary_key=True)
    hold_id: str = Field(foreign_key="checkouthold.hold_id", index=True)
    line_no: int
    node_id: str = Field(foreign_key="node.node_id")
    sku: str
    quantity: int


class ChannelPool(SQLModel, table=True):
    """What a channel may sell: which nodes, and optionally a share or cap of a node type's stock."""

    channel: str = Field(primary_key=True, max_length=40)
    node_types: list[str] | None = Field(default=None, sa_column=Column(JSON))
    node_ids: list[str] | None = Field(default=None, sa_column=Column(JSON))
    share_by_node_type: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    cap_by_node_type: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))


class ReservationStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    FULFILLED = "fulfilled"


class Reservation(SQLModel, table=True):
    """One row per order, shipment and line: a line divided between nodes has a row per piece,
    and a piece sourced again (moved, or backordered and then served) is a row of its own."""

    __table_args__ = (
        UniqueConstraint("order_id", "shipment_id", "line_no", name="uq_reservation_shipment_line"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(index=True, max_length=200)
    line_no: int
    node_id: str = Field(foreign_key="node.node_id")
    sku: str
    quantity: int
    shipment_id: str = Field(max_length=220)
    status: str = Field(default=ReservationStatus.ACTIVE, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class OrderView(SQLModel, table=True):
    """Read model for listing and reading orders without touching Temporal's visibility store."""

    order_id: str = Field(primary_key=True, max_length=200)
    channel: str = Field(index=True)
    external_id: str
    order_type: str
    priority: int
    status: str = Field(index=True)
    version: int = 0
    document: dict = Field(sa_column=Column(JSON, nullable=False))  # domain.orders.OrderState
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class AvailabilityState(SQLModel, table=True):
    """Last published in-stock state per channel and SKU ("*" is the unpooled view)."""

    channel: str = Field(primary_key=True, max_length=40)
    sku: str = Field(primary_key=True, max_length=64)
    in_stock: bool


class AvailabilityEvent(SQLModel, table=True):
    """Outbox of threshold events: a SKU went out of stock, or came back, for a channel."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(index=True)
    sku: str
    event: str  # out_of_stock | back_in_stock
    units: int
    at: datetime = Field(default_factory=utcnow)


class Watermark(SQLModel, table=True):
    """How far a background job has read an append-only table (e.g. stock movements)."""

    name: str = Field(primary_key=True, max_length=64)
    position: int = 0
    cursor: str | None = None


class FeedSource(SQLModel, table=True):
    """A system OpenDOM polls for stock deltas (ERP, WMS without push)."""

    source: str = Field(primary_key=True, max_length=64)
    url: str
    cursor: str | None = None
    enabled: bool = True
    kind: str = Field(default="stock", max_length=20)  # stock (ERP, WMS) | catalogue (PIM)


class ApiClient(SQLModel, table=True):
    """A caller of the API. Only a hash of its key is kept; callbacks from node systems are
    signed with `signing_secret` (HMAC), which is why that one is kept as is."""

    key_id: str = Field(primary_key=True, max_length=32)
    name: str
    role: str  # admin | channel | support | ops | node
    channel: str | None = None  # the only channel a channel key may act for
    node_id: str | None = None  # the only node a node key may speak for (None: a gateway)
    key_hash: str
    signing_secret: str | None = None
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str | None = Field(default=None, max_length=120)
    revoked_at: datetime | None = None
    secret_rotated_at: datetime | None = None


class CallbackSignature(SQLModel, table=True):
    """Signatures of accepted callbacks, so a replayed one is refused."""

    signature: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, index=True)


class NodeIncident(SQLModel, table=True):
    """A node rejected a shipment or missed an SLA on it; the node-health rule reads these."""

    shipment_id: str = Field(primary_key=True, max_length=220)  # one incident per shipment
    order_id: str = Field(max_length=200)
    node_id: str = Field(index=True, max_length=64)
    kind: str  # domain.lifecycle.IncidentKind
    reason: str
    at: datetime = Field(default_factory=utcnow, index=True)


class NodeStatusChange(SQLModel, table=True):
    """Every change of a node's status, by a person or by the node-health rule: the audit trail,
    and the point from which the rule counts incidents again after a node comes back."""

    id: int | None = Field(default=None, primary_key=True)
    node_id: str = Field(index=True, max_length=64)
    status: str
    reason: str
    automatic: bool = False
    at: datetime = Field(default_factory=utcnow, index=True)


class BidPriceRun(SQLModel, table=True):
    """One re-solve of the inventory-aware bid prices (services.bid_prices): what it counted,
    how long the LP took, and whether it succeeded. The latest `ok` run's prices are in force."""

    run_id: str = Field(primary_key=True, max_length=64)
    solved_at: datetime = Field(default_factory=utcnow, index=True)
    window_start: datetime
    window_end: datetime
    orders_counted: int = 0
    nodes: int = 0
    skus: int = 0
    solve_seconds: float = 0.0
    status: str = Field(default="ok", max_length=20)  # ok | failed
    error: str | None = None


class BidPrice(SQLModel, table=True):
    """Opportunity cost of one unit of a SKU at a node, from one run; only positive prices are
    stored (a missing row is a price of zero)."""

    __table_args__ = (UniqueConstraint("run_id", "node_id", "sku"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="bidpricerun.run_id", index=True, max_length=64)
    node_id: str = Field(max_length=64)
    sku: str = Field(max_length=64)
    price: float


class IncomingKind(StrEnum):
    PURCHASE_ORDER = "purchase_order"
    TRANSFER = "transfer"


class IncomingStatus(StrEnum):
    OPEN = "open"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class IncomingLine(SQLModel, table=True):
    """One line of a purchase order or of a transfer in transit: what should arrive at a node,
    and when. Its open units (quantity - received, while open) are in the position's `incoming`
    counter, through movements (ledger.incoming), so reconcile rebuilds them."""

    # One line per reference and line number whoever sent it: a WMS receipt names the ERP's PO.
    __table_args__ = (UniqueConstraint("kind", "reference", "line"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # IncomingKind
    reference: str = Field(max_length=120)  # the PO number or the transfer id
    line: int
    node_id: str = Field(foreign_key="node.node_id", index=True, max_length=64)  # where it arrives
    from_node_id: str | None = Field(default=None, max_length=64)  # a transfer's origin
    sku: str = Field(foreign_key="sku.sku", index=True, max_length=64)
    quantity: int
    received: int = 0
    expected_date: date = Field(index=True)
    status: str = Field(default=IncomingStatus.OPEN, index=True, max_length=20)
    source: str = Field(max_length=64)  # the feed that created it
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ParcelGroup(SQLModel, table=True):
    """Shipments of one customer to one address, on one channel, at one node, that travel as
    one parcel with one label (domain.parcels): open to new members until `closes_at`, when
    every member is released to the node. The label is bought once, by the first member to
    reach its label step (`label_claimed_by`, set by a conditional UPDATE), and reused by the
    others."""

    __tablename__ = "parcelgroup"
    __table_args__ = (
        Index("ix_parcelgroup_key", "channel", "customer_id", "address_key", "node_id"),
    )

    parcel_id: str = Field(primary_key=True, max_length=40)
    channel: str = Field(max_length=40)
    customer_id: str = Field(max_length=100)
    address_key: str = Field(max_length=300)  # domain.parcels.address_key
    node_id: str = Field(max_length=64)
    opened_at: datetime
    closes_at: datetime
    label_claimed_by: str | None = Field(default=None, max_length=220)  # a member's shipment id
    carrier: str | None = Field(default=None, max_length=40)
    service: str | None = Field(default=None, max_length=40)
    tracking_number: str | None = Field(default=None, max_length=100)
    label_id: str | None = Field(default=None, max_length=100)


class ParcelMemberStatus(StrEnum):
    ACTIVE = "active"
    LEFT = "left"  # cancelled or moved away: the parcel goes on without it


class ParcelMember(SQLModel, table=True):
    """One shipment in a parcel group, at most one group per shipment (a join is idempotent)."""

    __tablename__ = "parcelmember"

    shipment_id: str = Field(primary_key=True, max_length=220)
    parcel_id: str = Field(foreign_key="parcelgroup.parcel_id", index=True, max_length=40)
    order_id: str = Field(index=True, max_length=200)
    units: int
    status: str = Field(default=ParcelMemberStatus.ACTIVE, max_length=10)
    joined_at: datetime = Field(default_factory=utcnow)
    left_at: datetime | None = None
