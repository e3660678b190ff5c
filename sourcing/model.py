"""What the optimizer takes in and hands back.

Everything here is plain data: the caller (the allocation activity, a benchmark, a what-if run)
builds it from whatever it reads, and the same data always yields the same plan. Time is passed in
as `SourcingOrder.now` so that a replayed decision sees the clock the first one saw.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from domain.carriers import CarrierService
from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import DeliveryMethod, OrderLine, OrderType

MILES_PER_KM = 1 / 1.609344
Weekday = Annotated[int, Field(ge=0, le=6)]


class Scenario(StrEnum):
    FASTEST = "fastest"
    CHEAPEST = "cheapest"
    LOCAL = "local"


class SourcingOrder(BaseModel):
    """One order as sourcing sees it.

    `max_splits` is the largest number of shipments (nodes) the order may leave from; it counts
    real shipments only, never unfilled lines. `allow_split=False` is the same as `max_splits=1`.
    A line ships whole from one node when some node holds it; a line no node holds whole is
    divided between nodes within that limit (SourcingPolicy.split_lines).
    """

    order_id: str = ""
    lines: list[OrderLine] = Field(min_length=1)
    destination: GeoPoint
    delivery_method: DeliveryMethod = DeliveryMethod.HOME
    pickup_node_id: str | None = None
    scenario: Scenario = Scenario.CHEAPEST
    priority: int = Field(default=0, ge=0, le=9)
    allow_split: bool = True
    max_splits: int | None = Field(default=None, ge=1)
    excluded_nodes: list[str] = []
    requested_date: date | None = None
    now: datetime
    channel: str | None = None
    order_type: OrderType | None = None
    # Only the minimum-shipment-value rule reads prices; a SKU without one is worth nothing there.
    unit_prices: dict[str, float] = {}

    @model_validator(mode="after")
    def _pickup_names_its_store(self) -> "SourcingOrder":
        if self.delivery_method == DeliveryMethod.PICKUP and not self.pickup_node_id:
            raise ValueError("a pickup order must name its pickup_node_id")
        return self

    def shipment_limit(self) -> int | None:
        return 1 if not self.allow_split else self.max_splits

    def line_value(self, line: OrderLine) -> float:
        return self.unit_prices.get(line.sku, 0.0) * line.quantity


class ProcessingCalendar(BaseModel):
    """When a node works: an order released before the cut-off on a working day starts that day."""

    cutoff_hour: int = Field(default=14, ge=0, le=24)
    working_days: list[Weekday] = Field(default=[0, 1, 2, 3, 4], description="0 = Monday")
    processing_days: int = Field(default=0, ge=0, description="working days from start to ship")
    holidays: list[date] = []


class Reliability(BaseModel):
    rejection_rate: float = Field(default=0.0, ge=0, le=1)
    lateness_rate: float = Field(default=0.0, ge=0, le=1)


class NodeProfile(BaseModel):
    """A candidate node plus what costing it needs beyond stock and place.

    `None` costs fall back to the policy's figure for the node's type, so a caller that knows
    nothing special about a node can pass the CandidateNode itself to `optimize`.
    """

    node: CandidateNode
    handling_cost_per_unit: float | None = Field(default=None, ge=0)
    store_penalty_per_unit: float | None = Field(default=None, ge=0)
    daily_capacity: int | None = Field(default=None, ge=0, description="shipments per day")
    current_load: int = Field(default=0, ge=0, description="shipments already taken today")
    reliability: Reliability = Reliability()
    calendar: ProcessingCalendar = ProcessingCalendar()

    @classmethod
    def of(cls, node: CandidateNode) -> "NodeProfile":
        """A node with every default: built without validation (the checkout and allocation
        paths pass a couple of hundred nodes per order, and the defaults are already valid)."""
        return cls.model_construct(
            node=node,
            handling_cost_per_unit=None,
            store_penalty_per_unit=None,
            daily_capacity=None,
            current_load=0,
            reliability=_NO_RELIABILITY_ISSUES,
            calendar=DEFAULT_CALENDAR,
        )

    @property
    def node_id(self) -> str:
        return self.node.node_id

    def at_capacity(self) -> bool:
        return self.daily_capacity is not None and self.current_load >= self.daily_capacity


_NO_RELIABILITY_ISSUES = Reliability()
DEFAULT_CALENDAR = ProcessingCalendar()


class TransitBand(BaseModel):
    max_km: float = Field(gt=0)
    days: int = Field(ge=0)


class TransitTable(BaseModel):
    """Carrier days by distance; the last band covers everything beyond the others."""

    ground: list[TransitBand] = [
        TransitBand(max_km=150, days=1),
        TransitBand(max_km=500, days=2),
        TransitBand(max_km=1000, days=3),
        TransitBand(max_km=2000, days=4),
        TransitBand(max_km=1e9, days=5),
    ]
    express: list[TransitBand] = [
        TransitBand(max_km=1000, days=1),
        TransitBand(max_km=2500, days=2),
        TransitBand(max_km=1e9, days=3),
    ]
    store_transfer: list[TransitBand] = [
        TransitBand(max_km=300, days=1),
        TransitBand(max_km=1e9, days=3),
    ]


class ScenarioWeights(BaseModel):
    """How a scenario trades speed against money, in money."""

    cost_per_day: float = Field(default=0.0, ge=0, description="per shipment and promised day")
    store_penalty_factor: float = Field(default=1.0, ge=0)
    distance_factor: float = Field(default=1.0, ge=0, description="scales the per-km unit cost")


def _default_scenarios() -> dict[Scenario, ScenarioWeights]:
    return {
        Scenario.CHEAPEST: ScenarioWeights(),
        Scenario.FASTEST: ScenarioWeights(cost_per_day=6.0),
        # Local favours nearby nodes, stores included: distance weighs more, stores stop costing.
        Scenario.LOCAL: ScenarioWeights(store_penalty_factor=0.0, distance_factor=4.0),
    }


def _default_handling() -> dict[NodeType, float]:
    return {
        NodeType.WAREHOUSE: 0.30,
        NodeType.DC: 0.30,
        NodeType.THREE_PL: 0.45,
        NodeType.STORE: 0.80,
        NodeType.SUPPLIER: 0.60,
    }


class LpMethod(BaseModel):
    """One way the fluid LP serves a demand class: each SKU's node, and how many of the class's
    expected orders the LP sends that way (what is left of them, for a caller that counts)."""

    nodes: dict[str, str]
    orders: float = Field(ge=0)


class LpClassPlan(BaseModel):
    """The LP's methods for one demand class (a region and a basket), most used first. An order
    belongs to the class when its basket is the class's and its destination lies within
    `radius_km` of the region's point (the nearest such region wins)."""

    region: str
    destination: GeoPoint
    radius_km: float = Field(default=1.0, ge=0)
    methods: list[LpMethod]


def basket_key(quantities: dict[str, int]) -> str:
    """The key of a basket in `SourcingPolicy.lp_plans`: its SKUs and units, sorted."""
    return ",".join(f"{sku}:{qty}" for sku, qty in sorted(quantities.items()))


class SourcingPolicy(BaseModel):
    """The money model. Defaults are the published benchmark's parcel tariff
    ($8.759 per package + ($0.423 + $0.000541 per mile) per unit) expressed per km."""

    package_cost: float = Field(default=8.759, ge=0)
    unit_cost: float = Field(default=0.423, ge=0)
    unit_cost_per_km: float = Field(default=0.000541 * MILES_PER_KM, ge=0)
    # High by default so that a line goes unfilled only when no node can serve it; the benchmark
    # lowers it to the literature's "twice the farthest centre".
    unserved_unit_penalty: float = Field(default=500.0, ge=0)
    handling_cost_per_unit: dict[NodeType, float] = Field(default_factory=_default_handling)
    store_penalty_per_unit: float = Field(default=1.0, ge=0)
    rejection_cost: float = Field(default=12.0, ge=0, description="re-routing one rejection")
    lateness_cost: float = Field(default=6.0, ge=0, description="one late shipment")
    late_day_cost: float = Field(default=5.0, ge=0, description="per day past requested_date")
    scenarios: dict[Scenario, ScenarioWeights] = Field(default_factory=_default_scenarios)
    # Opportunity cost of a unit at a node (bid price), node -> sku -> money; see bid_prices.py.
    bid_prices: dict[str, dict[str, float]] = {}
    # With rationing, a line may go unfilled although a node holds it, when its opportunity cost
    # makes that cheaper. Without (the default), a line goes unfilled only when no eligible node
    # can serve it within the split limit: a unit held back is rarely worth a customer turned away.
    ration_stock: bool = False
    # A line no eligible node holds whole is divided between nodes, within the order's and
    # rule's shipment limit (sourcing/splits.py); False: it stays unfilled, as before issue 14.
    split_lines: bool = True
    # The fluid LP's own methods per demand class, basket_key -> regions (see bid_prices.py's
    # class_plans): an order of a class follows the method the LP uses most for it that its
    # stock can still serve, instead of the bid-price plan. Empty (the default): not used.
    lp_plans: dict[str, list[LpClassPlan]] = {}
    transit: TransitTable = TransitTable()

    def weights(self, scenario: Scenario) -> ScenarioWeights:
        return self.scenarios.get(scenario, ScenarioWeights())

    def handling_rate(self, node_type: NodeType, override: float | None = None) -> float:
        return override if override is not None else self.handling_cost_per_unit.get(node_type, 0.0)

    def store_penalty_rate(self, node_type: NodeType, override: float | None = None) -> float:
        if override is not None:
            return override
        return self.store_penalty_per_unit if node_type == NodeType.STORE else 0.0

    def bid_price(self, node_id: str, sku: str) -> float:
        return self.bid_prices.get(node_id, {}).get(sku, 0.0)

    def with_bid_prices(self, prices: dict[tuple[str, str], float]) -> "SourcingPolicy":
        nested: dict[str, dict[str, float]] = {}
        for (node_id, sku), price in sorted(prices.items()):
            if price > 0:
                nested.setdefault(node_id, {})[sku] = price
        return self.model_copy(update={"bid_prices": nested})


class Rule(BaseModel):
    """One sourcing rule: filters applied before the optimizer ranks what is left."""

    name: str
    node_types: list[NodeType] | None = None
    node_ids: list[str] | None = Field(default=None, description="a facility group")
    max_distance_km: float | None = Field(default=None, gt=0)
    max_splits: int | None = Field(default=None, ge=1)
    min_shipment_value: float | None = Field(default=None, ge=0)
    keep_lines_together: bool = False


class Ruleset(BaseModel):
    """Ordered rules: the first whose eligible nodes fill every line wins; the later ones are
    fallbacks. A ruleset applies to the channels and order types it names (none named: all)."""

    name: str
    channels: list[str] = []
    order_types: list[OrderType] = []
    rules: list[Rule] = Field(min_length=1)

    def applies_to(self, channel: str | None, order_type: OrderType | None) -> bool:
        channel_ok = not self.channels or channel in self.channels
        type_ok = not self.order_types or order_type in self.order_types
        return channel_ok and type_ok


class CostBreakdown(BaseModel):
    shipping: float = 0.0
    handling: float = 0.0
    store_penalty: float = 0.0
    reliability: float = 0.0
    opportunity: float = 0.0
    # Not money paid: what the scenario adds for time, lateness and distance, so plans rank as
    # the scenario wants while the other fields stay real costs.
    scenario: float = 0.0

    @property
    def total(self) -> float:
        return (
            self.shipping
            + self.handling
            + self.store_penalty
            + self.reliability
            + self.opportunity
            + self.scenario
        )


class SourcedShipment(BaseModel):
    node_id: str
    node_type: NodeType
    lines: list[OrderLine]
    distance_km: float
    carrier: CarrierService
    promised_date: date
    cost: CostBreakdown
    # The day the node hands the parcel over (its calendar's ship date): the shipment's ship-by.
    ship_by: date | None = None


class Alternative(BaseModel):
    """A runner-up plan, summarised: which nodes it would use and how much more it costs."""

    node_ids: list[str]
    total_cost: float
    cost_difference: float
    unfilled_line_nos: list[int] = []


class Plan(BaseModel):
    """The chosen plan. Pure: nothing in it depends on the clock of the machine that computed it."""

    order_id: str
    shipments: list[SourcedShipment]
    unfilled_lines: list[OrderLine] = []
    unfilled_cost: float = 0.0
    total_cost: float
    promised_date: date | None
    explanation: str
    alternatives: list[Alternative] = []
    rule: str | None = None
    exhaustive: bool = Field(description="False when the search budget ran out (greedy used)")
    evaluated: int = Field(description="partial plans the search evaluated")

    @property
    def packages(self) -> int:
        return len(self.shipments)

    @property
    def node_ids(self) -> list[str]:
        return [s.node_id for s in self.shipments]

    @property
    def unfilled_units(self) -> int:
        return sum(line.quantity for line in self.unfilled_lines)


class SearchBudget(BaseModel):
    """Deterministic stand-in for a time limit: partial plans the exact search may evaluate."""

    max_evaluations: int = Field(default=20_000, ge=0)
    alternatives: int = Field(default=3, ge=0, description="runner-up plans to report")
    max_exact_lines: int = Field(
        default=10, ge=1, description="orders with more lines go straight to greedy"
    )
