"""Input and result of the inventory housekeeping workflow its Schedule starts."""

from pydantic import BaseModel


class HousekeepingInput(BaseModel):
    pass


class HousekeepingResult(BaseModel):
    holds_expired: int
    deltas_pulled: int
    availability_events: int
    nodes_degraded: list[str] = []
    # Backordered orders the run retried because their stock arrived (runs recorded before the
    # sweep have none).
    backorders_retried: list[str] = []
