"""The checkout check: can this cart be sold, and how fast can it arrive?

Pure: given the channel's view of candidate nodes, it answers per line and offers delivery options
(home fast, home economy, pickup in a store near the customer), each with a promised date and the
sourcing plan behind it, so a hold can be placed on exactly the stock the promise relies on.

It lives in the sourcing room so that every sourcing and promise decision has one home: the
options are sourced with the nearest-node policy (`sourcing.nearest`) and dated by
`sourcing.promise`, the arithmetic the optimizer dates its shipments with, here with the
checkout's own calendar and transit table. Which policy the checkout sources with is a separate
decision from where it lives.
"""

from datetime import date, datetime

from pydantic import BaseModel, computed_field

from domain.carriers import COLLECT_CARRIER, CarrierService
from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint, distance_km
from domain.network import CandidateNode
from domain.orders import DeliveryMethod, DeliveryOptionCode, OrderLine
from sourcing.model import ProcessingCalendar, TransitBand, TransitTable
from sourcing.nearest import PlannedShipment, SourcingRequest, plan_nearest_node
from sourcing.promise import add_carrier_days, ship_date, transit_days

PICKUP_RADIUS_KM = 50.0

# The checkout's promise: every node hands a parcel over the day the order arrives if that is a
# weekday before 14:00 UTC, else the next weekday; then ground takes 1 to 5 carrier days by distance
# and express one day less (never under one). Not the optimizer's default table (`TransitTable()`):
# the checkout and the allocation still quote with different figures, and choosing one set is a
# separate decision from sharing the arithmetic.
CHECKOUT_CALENDAR = ProcessingCalendar(
    cutoff_hour=14, working_days=[0, 1, 2, 3, 4], processing_days=0, holidays=[]
)
CHECKOUT_TRANSIT = TransitTable(
    ground=[
        TransitBand(max_km=150, days=1),
        TransitBand(max_km=800, days=2),
        TransitBand(max_km=2000, days=3),
        TransitBand(max_km=1e9, days=5),
    ],
    express=[
        TransitBand(max_km=800, days=1),
        TransitBand(max_km=2000, days=2),
        TransitBand(max_km=1e9, days=4),
    ],
)


# The service each option is dated with; a collection is ready the day the store hands it over.
OPTION_SERVICES = {
    DeliveryOptionCode.HOME_FAST: CarrierService(carrier="SIMEX", service="express"),
    DeliveryOptionCode.HOME_ECONOMY: CarrierService(carrier="SIMEX", service="ground"),
    DeliveryOptionCode.PICKUP: CarrierService(carrier=COLLECT_CARRIER, service="collect-in-store"),
}


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
    handover = ship_date(now, CHECKOUT_CALENDAR)  # the same for every option: computed once
    options = _home_options(lines, destination, candidates, handover)
    pickup = _pickup_option(lines, destination, candidates, handover)
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


def option_date(handover: date, code: DeliveryOptionCode, distance_km: float) -> date:
    """The date an option promises, from the nodes' handover day (`ship_date` with
    `CHECKOUT_CALENDAR`) and the distance of the farthest shipment."""
    return add_carrier_days(
        handover, transit_days(CHECKOUT_TRANSIT, OPTION_SERVICES[code], distance_km)
    )


def _home_options(
    lines: list[OrderLine], destination: GeoPoint, candidates: list[CandidateNode], handover: date
) -> list[DeliveryOption]:
    try:
        plan = plan_nearest_node(SourcingRequest(lines=lines, destination=destination), candidates)
    except NoSourceAvailable:
        return []
    farthest = max(s.distance_km for s in plan.shipments)
    return [
        DeliveryOption.model_construct(
            code=code,
            promised_date=option_date(handover, code, farthest),
            shipments=plan.shipments,
        )
        for code in (DeliveryOptionCode.HOME_FAST, DeliveryOptionCode.HOME_ECONOMY)
    ]


def _pickup_option(
    lines: list[OrderLine], destination: GeoPoint, candidates: list[CandidateNode], handover: date
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
    plan = plan_nearest_node(request, [store])
    return DeliveryOption.model_construct(
        code=DeliveryOptionCode.PICKUP,
        promised_date=option_date(handover, DeliveryOptionCode.PICKUP, 0.0),
        shipments=plan.shipments,
        pickup_node_id=store.node_id,
    )
