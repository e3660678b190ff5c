"""How long each kind of node may take for each step before the order moves elsewhere."""

from pydantic import BaseModel, Field

from domain.network import NodeType


class NodeSla(BaseModel):
    accept_seconds: float = Field(gt=0)
    pick_seconds: float = Field(gt=0)
    ship_seconds: float = Field(gt=0)


class SlaPolicy(BaseModel):
    by_node_type: dict[NodeType, NodeSla]

    def for_node_type(self, node_type: NodeType | str) -> NodeSla:
        return self.by_node_type[NodeType(node_type)]


def default_sla_policy(scale: float = 1.0) -> SlaPolicy:
    """Defaults a retailer would start from; `scale` shrinks them for demos and tests."""
    hours = 3600 * scale
    stores = NodeSla(accept_seconds=0.5 * hours, pick_seconds=2 * hours, ship_seconds=4 * hours)
    warehouses = NodeSla(accept_seconds=1 * hours, pick_seconds=4 * hours, ship_seconds=8 * hours)
    partners = NodeSla(accept_seconds=2 * hours, pick_seconds=8 * hours, ship_seconds=24 * hours)
    return SlaPolicy(
        by_node_type={
            NodeType.STORE: stores,
            NodeType.WAREHOUSE: warehouses,
            NodeType.DC: warehouses,
            NodeType.THREE_PL: partners,
            NodeType.SUPPLIER: partners,
        }
    )


def uniform_sla_policy(seconds: float) -> SlaPolicy:
    """Every node type, every step, the same deadline: what tests use."""
    sla = NodeSla(accept_seconds=seconds, pick_seconds=seconds, ship_seconds=seconds)
    return SlaPolicy(by_node_type=dict.fromkeys(NodeType, sla))
