"""Bodies of the support actions that resolve an order waiting on a person (NeedsAttention)."""

from typing import Annotated

from fastapi import Path
from pydantic import Field

from api.schemas import ReallocateAction, SupportAction

# As long as the ids the order workflow makes (`OrderView.order_id`, `Reservation.shipment_id`).
OrderIdPath = Annotated[str, Path(min_length=1, max_length=200)]
ShipmentIdPath = Annotated[str, Path(min_length=1, max_length=220)]


class CancelAction(SupportAction):
    force: bool = Field(
        default=False,
        description="also cancel labelled shipments at their nodes; one that has already "
        "shipped stays shipped (raise a return)",
    )


class ForceableReallocateAction(ReallocateAction):
    force: bool = Field(
        default=False,
        description="also move picked and labelled shipments (re-release them elsewhere)",
    )


class MarkShippedAction(SupportAction):
    tracking_number: str | None = Field(default=None, max_length=100)
