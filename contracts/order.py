"""Input and result models of the order workflow, its signal, updates and query."""

from datetime import datetime

from pydantic import BaseModel, Field

# NodeEventType is the signal's vocabulary; it lives in domain (import it from there) so the
# lifecycle rules can weigh events without importing contracts.
from domain.orders import NodeEventType, Order, OrderStatus, Shipment


class OrderWorkflowInput(BaseModel):
    order: Order


class OrderWorkflowResult(BaseModel):
    order_id: str
    status: OrderStatus
    shipments: list[Shipment]


class NodeEvent(BaseModel):
    shipment_id: str
    node_id: str
    event: NodeEventType
    reason: str | None = None
    tracking_number: str | None = None
    event_id: str | None = None
    # When the node says it happened (its clock): a parcel that left before a stock count was
    # already counted out by it (ledger.stock.fulfil).
    occurred_at: datetime | None = None


class CancelInput(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    # Also cancel shipments labelled and being handed to the carrier: each is cancelled at its
    # node, and one its node says has already shipped stays shipped (raise a return for it).
    force: bool = False


class CancelResult(BaseModel):
    order_id: str
    status: OrderStatus


class RetryInput(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    # Sent by the backorder sweep (stock arrived), not by a person: the order keeps the nodes it
    # excluded less than OPENDOM_EXCLUSION_FORGET_SECONDS ago, where a person's retry forgets them
    # all (orders started before Patch.ORDER_BACKORDERS_2026_12 forget them all either way).
    automatic: bool = False


class RetryResult(BaseModel):
    order_id: str
    status: OrderStatus


class ReallocateInput(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    node_id: str | None = None  # None: every shipment that has not been picked yet
    # Also move picked and labelled shipments (re-release them elsewhere): for a node that holds a
    # parcel and will not ship it. One its node says has already shipped stays shipped.
    force: bool = False
    # The node is down (a node outage moves the order): source the lines again at once and cancel
    # at the node afterwards, rather than wait for an unreachable node to answer the cancel.
    cancel_in_background: bool = False


class ReallocateResult(BaseModel):
    order_id: str
    moved_shipments: list[str]
    status: OrderStatus


class MarkShippedInput(BaseModel):
    """Support records that a shipment left its node (the node's own word, by phone or portal),
    when the node system never sent `shipped`."""

    shipment_id: str = Field(min_length=1, max_length=220)
    reason: str = Field(min_length=1, max_length=500)
    tracking_number: str | None = Field(default=None, max_length=100)


class MarkShippedResult(BaseModel):
    order_id: str
    shipment_id: str
    status: OrderStatus


class TakeDeliveryResult(BaseModel):
    order_id: str
    shipment_id: str
    shipment_status: str | None  # None: the order has no such shipment (the event is noted)


class AcknowledgeInput(BaseModel):
    """Support has dealt with what the order's `attention` said: the flag clears."""

    reason: str = Field(min_length=1, max_length=500)


class AcknowledgeResult(BaseModel):
    order_id: str
    status: OrderStatus
