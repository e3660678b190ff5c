"""The checkout check: can this cart be sold, how fast can it arrive, and from where?

Pure. The delivery options are the optimizer's scenarios over the candidates allocation sees —
the same candidates, costs, node calendars and transit model: home fast is the fastest plan (by
express), home economy the cheapest, pickup the local plan at the nearest store within
PICKUP_RADIUS_KM that holds the whole cart. Each option carries the plan behind it, shipment by
shipment with its carrier service, ship-by and promised dates, so that a hold reserves exactly
that plan, and an order sold with the option is allocated under the same scenario
(sourcing.allocation) and finds the same plan again while stock allows.
"""

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, computed_field

from domain.geo import GeoPoint, distance_km
from domain.network import CandidateNode
from domain.orders import DeliveryMethod, DeliveryOptionCode, OrderLine
from sourcing.allocation import OPTION_SCENARIOS
from sourcing.errors import NoFeasiblePlan
from sourcing.model import NodeProfile, Plan, Ruleset, SourcingOrder, SourcingPolicy
from sourcing.optimizer import DEFAULT_POLICY, optimize, prepared
from sourcing.quote import UNDECIDED, Quote, asks_optimize, fast_path_applies, quoted_plans

PICKUP_RADIUS_KM = 50.0


class LineAvailability(BaseModel):
    line_no: int
    sku: str
    quantity: int
    available: bool
    units_available: int


class QuotedShipment(BaseModel):
    node_id: str
    node_type: str
    lines: list[OrderLine]
    distance_km: float
    carrier: str
    service: str
    ship_by: date  # the day the node hands it over
    promised_date: date


class DeliveryOption(BaseModel):
    code: DeliveryOptionCode
    promised_date: date
    shipments: list[QuotedShipment]
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
    nodes: Sequence[NodeProfile | CandidateNode],
    now: datetime,
    policy: SourcingPolicy = DEFAULT_POLICY,
    shippable_units: dict[str, int] | None = None,
    ruleset: Ruleset | None = None,
    channel: str | None = None,
    fast: bool = True,
) -> CheckoutAnswer:
    """`nodes`: the channel's candidates with their calendars, `now` on their clock (as
    allocation reads them). `shippable_units` (per SKU, over every shipping node) lets a caller
    pass fewer nodes and still report true totals. `fast=False` asks `optimize` for every option
    (the fast path, sourcing.quote, gives the same options for the carts it decides)."""
    candidates = [n.node if isinstance(n, NodeProfile) else n for n in nodes]
    totals = shippable_units or shippable_totals(candidates)
    # Built from values already validated or computed here: constructed without validating them
    # again (the checkout check is a hot path).
    answers = [
        _construct(
            LineAvailability,
            {
                "line_no": ln.line_no,
                "sku": ln.sku,
                "quantity": ln.quantity,
                "units_available": totals.get(ln.sku, 0),
                "available": totals.get(ln.sku, 0) >= ln.quantity,
            },
        )
        for ln in lines
    ]
    home = _order(lines, destination, now, DeliveryOptionCode.HOME_FAST, channel)
    economy = _order(lines, destination, now, DeliveryOptionCode.HOME_ECONOMY, channel)
    orders = [(DeliveryOptionCode.HOME_FAST, home), (DeliveryOptionCode.HOME_ECONOMY, economy)]
    store = pickup_store(lines, destination, candidates)
    if store is not None:
        order = _order(lines, store.location, now, DeliveryOptionCode.PICKUP, channel, store)
        orders.append((DeliveryOptionCode.PICKUP, order))
    # The fast path's arrays, read once for the three scenarios (the cache passes them ready).
    quick = (
        prepared(nodes, [ln.sku for ln in lines])
        if fast and fast_path_applies(lines, policy, ruleset)
        else None
    )
    quotes = (
        quoted_plans([order for _, order in orders], quick, policy, ruleset)
        if quick is not None
        else [UNDECIDED] * len(orders)
    )
    options = []
    for (code, order), quote in zip(orders, quotes, strict=True):
        if asks_optimize(quote):
            option = _option(code, order, nodes, policy, ruleset)
        else:
            option = _quick_option(code, order, quote)
        if option is not None:
            options.append(option)
    return _construct(CheckoutAnswer, {"lines": answers, "options": options})


def shippable_totals(candidates: Sequence[CandidateNode]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for c in candidates:
        if c.can_ship:
            for sku, units in c.available.items():
                totals[sku] = totals.get(sku, 0) + units
    return totals


def pickup_store(
    lines: list[OrderLine], destination: GeoPoint, candidates: Sequence[CandidateNode]
) -> CandidateNode | None:
    """The store a pickup is offered at: the nearest within PICKUP_RADIUS_KM holding the cart."""
    stores = sorted(
        (
            (distance_km(c.location, destination), c.node_id, c)
            for c in candidates
            if c.can_pickup and all(c.can_serve(ln.sku, ln.quantity) for ln in lines)
        ),
        key=lambda found: found[:2],
    )
    if not stores or stores[0][0] > PICKUP_RADIUS_KM:
        return None
    return stores[0][2]


def _order(
    lines: list[OrderLine],
    destination: GeoPoint,
    now: datetime,
    code: DeliveryOptionCode,
    channel: str | None,
    store: CandidateNode | None = None,
) -> SourcingOrder:
    return _construct(
        SourcingOrder,
        {
            "order_id": "",
            "lines": lines,
            "destination": destination,
            "delivery_method": DeliveryMethod.PICKUP if store else DeliveryMethod.HOME,
            "pickup_node_id": store.node_id if store else None,
            "scenario": OPTION_SCENARIOS[code],
            # allocation's default: the option, not the priority, sets the scenario
            "priority": 5,
            "allow_split": True,
            "max_splits": None,
            "excluded_nodes": [],
            "requested_date": None,
            "now": now,
            "channel": channel,
            "order_type": None,
            "unit_prices": {},
        },
    )


def _option(
    code: DeliveryOptionCode,
    order: SourcingOrder,
    nodes: Sequence[NodeProfile | CandidateNode],
    policy: SourcingPolicy,
    ruleset: Ruleset | None,
) -> DeliveryOption | None:
    try:
        plan = optimize(order, nodes, policy, ruleset)
    except NoFeasiblePlan:
        return None
    if plan.unfilled_lines or plan.promised_date is None:
        return None  # orders are reserved whole: an option must serve every line
    return DeliveryOption.model_construct(
        code=code,
        promised_date=plan.promised_date,
        shipments=_quoted(plan),
        pickup_node_id=order.pickup_node_id,
    )


def _quick_option(
    code: DeliveryOptionCode, order: SourcingOrder, shipments: Quote
) -> DeliveryOption | None:
    if not isinstance(shipments, list):
        return None
    # Every field given, of its type: built as model_construct would, without its defaults pass.
    quoted = [_construct(QuotedShipment, s) for s in shipments]
    return _construct(
        DeliveryOption,
        {
            "code": code,
            "promised_date": max(s.promised_date for s in quoted),
            "shipments": quoted,
            "pickup_node_id": order.pickup_node_id,
        },
    )


_M = TypeVar("_M", bound=BaseModel)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_set = object.__setattr__


def _construct(cls: type[_M], fields: dict[str, Any]) -> _M:
    """`cls.model_construct(**fields)` for a plain model given every field of its own type (no
    aliases, extras, private attributes or post-init): optimizer._built with the model's field
    names read once. A model that has grown a field with a default goes to model_construct."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(cls.model_fields)
    if len(fields) != len(names):
        return cls.model_construct(**fields)
    model = cls.__new__(cls)
    # In the fields' declared order, as validation would store them (JSON keeps that order).
    _set(model, "__dict__", {name: fields[name] for name in names})
    _set(model, "__pydantic_fields_set__", set(fields))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def _quoted(plan: Plan) -> list[QuotedShipment]:
    return [
        QuotedShipment.model_construct(
            node_id=s.node_id,
            node_type=str(s.node_type),
            lines=s.lines,
            distance_km=s.distance_km,
            carrier=s.carrier.carrier,
            service=s.carrier.service,
            ship_by=s.ship_by,
            promised_date=s.promised_date,
        )
        for s in plan.shipments
    ]
