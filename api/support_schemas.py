"""Bodies of the support actions that resolve an order waiting on a person (NeedsAttention)."""

from pydantic import Field

from api.schemas import ReallocateAction, SupportAction


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
