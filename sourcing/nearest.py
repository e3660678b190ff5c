"""The nearest-node policy: the rule the checkout quotes with today.

Kept beside the optimizer so that every sourcing decision lives in one room: the checkout's
options and the allocation can then be compared (and later unified) on the same inputs. It is the
lifecycle's baseline rather than a costed plan: the nearest node that has every line; when none
has, the fewest shipments found greedily (the node covering the most remaining units first,
nearest on ties). Lines are not split across nodes. Pickup orders are served from the pickup
store's own stock when it has every line, otherwise shipped to that store from the network.
"""

from pydantic import BaseModel

from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint, distance_km
from domain.network import CandidateNode
from domain.orders import DeliveryMethod, OrderLine


class SourcingRequest(BaseModel):
    lines: list[OrderLine]
    destination: GeoPoint
    delivery_method: DeliveryMethod = DeliveryMethod.HOME
    pickup_node_id: str | None = None
    excluded_nodes: list[str] = []


class PlannedShipment(BaseModel):
    node_id: str
    node_type: str
    lines: list[OrderLine]
    distance_km: float


class SourcingPlan(BaseModel):
    shipments: list[PlannedShipment]
    explanation: str


def plan_nearest_node(request: SourcingRequest, candidates: list[CandidateNode]) -> SourcingPlan:
    """Raises NoSourceAvailable naming the lines no eligible node can serve."""
    eligible = [c for c in candidates if c.node_id not in set(request.excluded_nodes)]
    own_stock = _pickup_from_own_stock(request, eligible)
    if own_stock is not None:
        return own_stock
    shippers = sorted(
        (c for c in eligible if c.can_ship),
        key=lambda c: (distance_km(c.location, request.destination), c.priority, c.node_id),
    )
    _refuse_unservable_lines(request, shippers)
    whole = [c for c in shippers if all(c.can_serve(ln.sku, ln.quantity) for ln in request.lines)]
    if whole:
        best = whole[0]
        why = (
            f"{best.node_id} ({best.node_type}, {_km(best, request)} km) is the nearest of "
            f"{len(whole)} node(s) holding every line"
        )
        return SourcingPlan(shipments=[_shipment(best, request.lines, request)], explanation=why)
    return _split(request, shippers)


def _pickup_from_own_stock(
    request: SourcingRequest, eligible: list[CandidateNode]
) -> SourcingPlan | None:
    if request.delivery_method != DeliveryMethod.PICKUP:
        return None
    store = next((c for c in eligible if c.node_id == request.pickup_node_id), None)
    if store is None or not store.can_pickup:
        return None
    if not all(store.can_serve(ln.sku, ln.quantity) for ln in request.lines):
        return None
    why = f"pickup store {store.node_id} holds every line: click & collect from its own stock"
    return SourcingPlan(shipments=[_shipment(store, request.lines, request)], explanation=why)


def _refuse_unservable_lines(request: SourcingRequest, shippers: list[CandidateNode]) -> None:
    missing = [
        ln for ln in request.lines if not any(c.can_serve(ln.sku, ln.quantity) for c in shippers)
    ]
    if missing:
        raise NoSourceAvailable(lines=missing, excluded_nodes=list(request.excluded_nodes))


def _split(request: SourcingRequest, shippers: list[CandidateNode]) -> SourcingPlan:
    remaining = list(request.lines)
    shipments: list[PlannedShipment] = []
    while remaining:
        # `shippers` is sorted nearest first, so max() keeps the nearest among equal coverage.
        best = max(shippers, key=lambda c: _units_covered(c, remaining))
        served = [ln for ln in remaining if best.can_serve(ln.sku, ln.quantity)]
        shipments.append(_shipment(best, served, request))
        remaining = [ln for ln in remaining if ln not in served]
    parts = ", ".join(f"{s.node_id} (lines {[ln.line_no for ln in s.lines]})" for s in shipments)
    why = f"no single node holds every line; split into {len(shipments)} shipments: {parts}"
    return SourcingPlan(shipments=shipments, explanation=why)


def _units_covered(node: CandidateNode, lines: list[OrderLine]) -> int:
    return sum(ln.quantity for ln in lines if node.can_serve(ln.sku, ln.quantity))


def _shipment(
    node: CandidateNode, lines: list[OrderLine], request: SourcingRequest
) -> PlannedShipment:
    return PlannedShipment(
        node_id=node.node_id,
        node_type=node.node_type,
        lines=list(lines),
        distance_km=_km(node, request),
    )


def _km(node: CandidateNode, request: SourcingRequest) -> float:
    return round(distance_km(node.location, request.destination), 1)
