"""The fulfilment network: node types, and a node as sourcing sees it."""

from enum import StrEnum

from pydantic import BaseModel

from domain.geo import GeoPoint


class NodeType(StrEnum):
    WAREHOUSE = "warehouse"
    STORE = "store"
    DC = "dc"
    THREE_PL = "3pl"
    SUPPLIER = "supplier"


class CandidateNode(BaseModel):
    """A node with what it can sell now (available to promise, per SKU) for one order's SKUs."""

    node_id: str
    node_type: NodeType
    location: GeoPoint
    can_ship: bool
    can_pickup: bool
    priority: int = 100
    available: dict[str, int]

    def can_serve(self, sku: str, quantity: int) -> bool:
        return self.available.get(sku, 0) >= quantity
