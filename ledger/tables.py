"""SQL tables. Counters on stock positions are only ever changed by conditional UPDATEs
(see ledger.stock); reservations are rows keyed by order, line and node so retries are idempotent."""

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


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
    active: bool = True
    system_url: str  # the node's WMS / store / 3PL endpoint
    accept_sla_seconds: float | None = None  # None: the node type's default
    pick_sla_seconds: float | None = None
    ship_sla_seconds: float | None = None


class Sku(SQLModel, table=True):
    sku: str = Field(primary_key=True, max_length=64)
    name: str
    unit_price: float = 0.0


class StockPosition(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("node_id", "sku"),)

    id: int | None = Field(default=None, primary_key=True)
    node_id: str = Field(foreign_key="node.node_id", index=True)
    sku: str = Field(foreign_key="sku.sku", index=True)
    on_hand: int = 0
    reserved: int = 0
    safety_stock: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class ReservationStatus:
    ACTIVE = "active"
    RELEASED = "released"
    FULFILLED = "fulfilled"


class Reservation(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("order_id", "line_no", "node_id"),)

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
