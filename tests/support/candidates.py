"""Candidate nodes placed by distance from one customer, for the pure sourcing tests."""

from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import OrderLine

HOME = GeoPoint(lat=48.8566, lon=2.3522)  # Paris


def node(node_id: str, km_east: float, stock: dict[str, int], **kw) -> CandidateNode:
    return CandidateNode(
        node_id=node_id,
        node_type=kw.pop("node_type", NodeType.WAREHOUSE),
        location=GeoPoint(lat=HOME.lat, lon=HOME.lon + km_east / 73.0),
        can_ship=kw.pop("can_ship", True),
        can_pickup=kw.pop("can_pickup", False),
        available=stock,
        **kw,
    )


def lines(*items: tuple[str, int]) -> list[OrderLine]:
    return [OrderLine(line_no=i, sku=s, quantity=q) for i, (s, q) in enumerate(items, 1)]
