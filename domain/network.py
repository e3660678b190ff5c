"""The fulfilment network: node types, and a node as sourcing sees it."""

from dataclasses import dataclass, field
from enum import StrEnum

from domain.geo import GeoPoint


class NodeType(StrEnum):
    WAREHOUSE = "warehouse"
    STORE = "store"
    DC = "dc"
    THREE_PL = "3pl"
    SUPPLIER = "supplier"


@dataclass(slots=True)
class CandidateNode:
    """A node with what it can sell now (available to promise, per SKU) for one order's SKUs.

    A plain dataclass, not a pydantic model: the checkout path builds a couple of hundred of
    these per request, and validation would cost more than the decision itself."""

    node_id: str
    node_type: NodeType
    location: GeoPoint
    can_ship: bool
    can_pickup: bool
    priority: int = 100
    available: dict[str, int] = field(default_factory=dict)

    def can_serve(self, sku: str, quantity: int) -> bool:
        return self.available.get(sku, 0) >= quantity
