"""Input and result of the node-outage fan-out workflow."""

from pydantic import BaseModel, Field


class NodeOutageInput(BaseModel):
    node_id: str
    reason: str
    orders_per_second: int = Field(default=20, ge=1, le=500)


class NodeOutageResult(BaseModel):
    node_id: str
    moved: list[str]
    left_in_place: dict[str, str]  # order id -> why (already picked, closed)
