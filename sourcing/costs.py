"""The cost of a shipment: a part paid once per package and a part paid per line.

Splitting the cost this way is what makes the search exact and fast: a plan's cost is the sum,
over its shipments, of the package part plus the line parts, so the best node for any group of
lines can be found independently of the other groups.
"""

from typing import NamedTuple

from domain.orders import OrderLine
from sourcing.model import CostBreakdown, NodeProfile, ScenarioWeights, SourcingPolicy


class CostTerms(NamedTuple):
    shipping: float = 0.0
    handling: float = 0.0
    store_penalty: float = 0.0
    reliability: float = 0.0
    opportunity: float = 0.0
    scenario: float = 0.0

    @property
    def total(self) -> float:
        return sum(self)

    def plus(self, other: "CostTerms") -> "CostTerms":
        return CostTerms(*(a + b for a, b in zip(self, other, strict=True)))

    def breakdown(self) -> CostBreakdown:
        return CostBreakdown(**{k: round(v, 4) for k, v in self._asdict().items()})


def package_terms(
    policy: SourcingPolicy,
    weights: ScenarioWeights,
    profile: NodeProfile,
    collect: bool,
    days_to_deliver: int,
    days_late: int,
) -> CostTerms:
    """Paid once per shipment. A collection from the pickup store's own shelves has no parcel."""
    reliability = profile.reliability
    return CostTerms(
        shipping=0.0 if collect else policy.package_cost,
        reliability=reliability.rejection_rate * policy.rejection_cost
        + reliability.lateness_rate * policy.lateness_cost,
        scenario=weights.cost_per_day * days_to_deliver + policy.late_day_cost * days_late,
    )


class UnitRates(NamedTuple):
    """What one unit costs at one node for one order, before its SKU's opportunity cost."""

    shipping: float
    handling: float
    store_penalty: float
    scenario: float

    @property
    def total(self) -> float:
        return self.shipping + self.handling + self.store_penalty + self.scenario


def unit_rates(
    policy: SourcingPolicy,
    weights: ScenarioWeights,
    profile: NodeProfile,
    distance_km: float,
    collect: bool,
) -> UnitRates:
    per_km = policy.unit_cost_per_km * distance_km
    return UnitRates(
        shipping=0.0 if collect else policy.unit_cost + per_km,
        handling=policy.handling_rate(profile),
        store_penalty=policy.store_penalty_rate(profile) * weights.store_penalty_factor,
        # Local weighs distance more than it costs; the surplus is preference, not money.
        scenario=0.0 if collect else per_km * (weights.distance_factor - 1.0),
    )


def line_cost(rates: UnitRates, quantity: int, bid_price: float) -> float:
    """The same sum as line_terms(...).total, without building the breakdown: the search's hot path."""
    return quantity * (rates.total + bid_price)


def line_terms(rates: UnitRates, quantity: int, bid_price: float) -> CostTerms:
    return CostTerms(
        shipping=quantity * rates.shipping,
        handling=quantity * rates.handling,
        store_penalty=quantity * rates.store_penalty,
        opportunity=quantity * bid_price,
        scenario=quantity * rates.scenario,
    )


def unserved_cost(policy: SourcingPolicy, line: OrderLine) -> float:
    return policy.unserved_unit_penalty * line.quantity
