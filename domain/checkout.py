"""The checkout check: can this cart be sold, and how fast can it arrive?

Pure: given the channel's view of candidate nodes, it answers per line and offers delivery options
(home fast, home economy, pickup in a store near the customer), each with a promised date and the
sourcing plan behind it, so a hold can be placed on exactly the stock the promise relies on.
"""

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, computed_field

from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint, distance_km
from domain.network import CandidateNode
from domain.orders import DeliveryMethod, OrderLine
from domain.promise import collection_ready_date, promised_date
from domain.sourcing import PlannedShipment, SourcingRequest, plan_sourcing

PICKUP_RADIUS_KM = 50.0


class DeliveryOptionCode(StrEnum):
    HOME_FAST = "home_fast"
    HOME_ECONOMY = "home_economy"
    PICKUP = "pickup"


class LineAvailability(BaseModel):
    line_no: int
    sku: str
    quantity: int
    available: bool
    units_available: int


class DeliveryOption(BaseModel):
    code: DeliveryOptionCode
    promised_date: date
    shipments: list[PlannedShipment]
    pickup_node_id: str | None = None


class CheckoutAnswer(BaseModel):
    lines: list[LineAvailability]
    options: list[DeliveryOption]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sellable(self) -> bool:
        return all(line.available for line in self.lines)


def check_cart(
    lines: list[OrderLine],
    destination: GeoPoint,
    candidates: list[CandidateNode],
    now: datetime,
    shippable_units: dict[str, int] | None = None,
) -> CheckoutAnswer:
    """`shippable_units` (per SKU, over every shipping node) lets a caller pass only the
    candidates that can matter (see `relevant_candidates`) and still report true totals."""
    totals = shippable_units or shippable_totals(candidates)
    # The models below are built from values already validated or computed here, so they are
    # constructed without validating them again (the checkout check is a hot path).
    answers = [
        LineAvailability.model_construct(
            line_no=ln.line_no,
            sku=ln.sku,
            quantity=ln.quantity,
            units_available=totals.get(ln.sku, 0),
            available=totals.get(ln.sku, 0) >= ln.quantity,
        )
        for ln in lines
    ]
    options = _home_options(lines, destination, candidates, now)
    pickup = _pickup_option(lines, destination, candidates, now)
    if pickup is not None:
        options.append(pickup)
    return CheckoutAnswer.model_construct(lines=answers, options=options)


def shippable_totals(candidates: list[CandidateNode]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for c in candidates:
        if c.can_ship:
            for sku, units in c.available.items():
                totals[sku] = totals.get(sku, 0) + units
    return totals


def relevant_candidates(
    lines: list[OrderLine], destination: GeoPoint, candidates: list[CandidateNode]
) -> list[CandidateNode]:
    """The candidates that can change `check_cart`'s answer. When some node holds every line,
    the home options use the nearest such node(s) and pickup the nearest such store: every other
    node is irrelevant, and dropping them makes the check independent of network size."""
    whole = [c for c in candidates if all(c.can_serve(ln.sku, ln.quantity) for ln in lines)]
    shipping = [c for c in whole if c.can_ship]
    if not shipping:
        return candidates  # a split may be needed: the planner must see everyone
    km = {c.node_id: distance_km(c.location, destination) for c in whole}
    keep: dict[str, CandidateNode] = {}
    for group in (shipping, [c for c in whole if c.can_pickup]):
        if group:
            nearest = min(km[c.node_id] for c in group)
            keep.update((c.node_id, c) for c in group if km[c.node_id] == nearest)
    return list(keep.values())


def _home_options(
    lines: list[OrderLine], destination: GeoPoint, candidates: list[CandidateNode], now: datetime
) -> list[DeliveryOption]:
    try:
        plan = plan_sourcing(SourcingRequest(lines=lines, destination=destination), candidates)
    except NoSourceAvailable:
        return []
    farthest = max(s.distance_km for s in plan.shipments)
    return [
        DeliveryOption.model_construct(
            code=code,
            promised_date=promised_date(now, farthest, service),
            shipments=plan.shipments,
        )
        for code, service in (
            (DeliveryOptionCode.HOME_FAST, "express"),
            (DeliveryOptionCode.HOME_ECONOMY, "ground"),
        )
    ]


def _pickup_option(
    lines: list[OrderLine], destination: GeoPoint, candidates: list[CandidateNode], now: datetime
) -> DeliveryOption | None:
    stores = sorted(
        (
            (distance_km(c.location, destination), c)
            for c in candidates
            if c.can_pickup and all(c.can_serve(ln.sku, ln.quantity) for ln in lines)
        ),
        key=lambda pair: (pair[0], pair[1].node_id),
    )
    if not stores or stores[0][0] > PICKUP_RADIUS_KM:
        return None
    store = stores[0][1]
    request = SourcingRequest(
        lines=lines,
        destination=store.location,
        delivery_method=DeliveryMethod.PICKUP,
        pickup_node_id=store.node_id,
    )
    plan = plan_sourcing(request, [store])
    return DeliveryOption.model_construct(
        code=DeliveryOptionCode.PICKUP,
        promised_date=collection_ready_date(now),
        shipments=plan.shipments,
        pickup_node_id=store.node_id,
    )
