"""Candidate nodes placed by distance from one customer, for the pure sourcing tests."""

import random
from collections.abc import Sequence

from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import OrderLine
from sourcing.model import NodeProfile, ProcessingCalendar, Reliability

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


def random_profile(
    rng: random.Random, node: CandidateNode, calendars: Sequence[ProcessingCalendar]
) -> NodeProfile:
    """A node with random costs, capacity, reliability and calendar, for the equivalence tests."""
    capacity = rng.choice((None, None, 10))
    return NodeProfile(
        node=node,
        handling_cost_per_unit=rng.choice((None, 0.2, 1.5)),
        store_penalty_per_unit=rng.choice((None, 0.0, 2.0)),
        daily_capacity=capacity,
        current_load=rng.choice((0, 10)) if capacity else 0,
        reliability=Reliability(
            rejection_rate=rng.choice((0.0, 0.1)), lateness_rate=rng.choice((0.0, 0.2))
        ),
        calendar=rng.choice(list(calendars)),
    )
