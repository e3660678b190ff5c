"""Models at the API edge. Unknown fields are refused so a typo cannot silently drop data."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from contracts.order import NodeEventType
from domain.orders import Address, Customer, DeliveryMethod, OrderLine, OrderType

SLUG = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class OrderAccepted(BaseModel):
    order_id: str
    status: str
    duplicate: bool = Field(description="true when this channel and external id were seen before")
    links: dict[str, str]


class SupportAction(Strict):
    reason: str = Field(min_length=1, max_length=500)


class ReallocateAction(SupportAction):
    node_id: str | None = Field(default=None, description="only shipments at this node")


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


class ErrorBody(BaseModel):
    error: str
    message: str
