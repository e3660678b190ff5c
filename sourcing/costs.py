"""The cost of a shipment: a part paid once per package and a part paid per unit.

Splitting the cost this way is what makes the search exact and fast: a plan's cost is the sum,
over its shipments, of the package part plus the line parts, so the best node for any group of
lines can be found independently of the other groups.

The functions are plain arithmetic, so they take floats or numpy arrays alike: the optimizer
prices every candidate at once with arrays, and the plan's breakdown picks the chosen node's
entries out of the very same numbers.
"""

from typing import Any, NamedTuple

from domain.orders import OrderLine
from sourcing.model import ScenarioWeights, SourcingPolicy

Number = Any  # a float, or a numpy array of them (one entry per candidate)


class CostTerms(NamedTuple):
    shipping: Number = 0.0
    handling: Number = 0.0
    store_penalty: Number = 0.0
    reliability: Number = 0.0
    opportunity: Number = 0.0
    scenario: Number = 0.0

    @property
    def total(self) -> Number:
        return (
            self.shipping
            + self.handling
            + self.store_penalty
            + self.reliability
            + self.opportunity
            + self.scenario
        )

    def at(self, i: int) -> "CostTerms":
        """One candidate's terms out of per-candidate arrays (a term the same for every
        candidate may be kept as one number)."""
        return CostTerms(
            *(float(term[i]) if getattr(term, "ndim", 0) else float(term) for term in self)
        )

    def plus(self, other: "CostTerms") -> "CostTerms":
        return CostTerms(*(a + b for a, b in zip(self, other, strict=True)))


class UnitRates(NamedTuple):
    """What one unit costs at a node for this order, before its SKU's opportunity cost."""

    shipping: Number
    handling: Number
    store_penalty: Number
    scenario: Number

    @property
    def total(self) -> Number:
        return self.shipping + self.handling + self.store_penalty + self.scenario

    def at(self, i: int) -> "UnitRates":
        return UnitRates(
            *(float(rate[i]) if getattr(rate, "ndim", 0) else float(rate) for rate in self)
        )


def package_terms(
    policy: SourcingPolicy,
    weights: ScenarioWeights,
    collect: Number,
    rejection_rate: Number,
    lateness_rate: Number,
    days_to_deliver: Number,
    days_late: Number,
) -> CostTerms:
    """Paid once per shipment. A collection from the pickup store's own shelves has no parcel."""
    return CostTerms(
        shipping=(1 - collect) * policy.package_cost,
        reliability=rejection_rate * policy.rejection_cost + lateness_rate * policy.lateness_cost,
        scenario=weights.cost_per_day * days_to_deliver + policy.late_day_cost * days_late,
    )


def unit_rates(
    policy: SourcingPolicy,
    weights: ScenarioWeights,
    handling_rate: Number,
    store_penalty_rate: Number,
    distance_km: Number,
    collect: Number,
) -> UnitRates:
    per_km = policy.unit_cost_per_km * distance_km
    ships = 1 - collect
    return UnitRates(
        shipping=ships * (policy.unit_cost + per_km),
        handling=handling_rate,
        store_penalty=store_penalty_rate * weights.store_penalty_factor,
        # Local weighs distance more than it costs; the surplus is preference, not money.
        scenario=ships * per_km * (weights.distance_factor - 1.0),
    )


def line_terms(rates: UnitRates, quantity: int, bid_price: float) -> CostTerms:
    """A line's share; its total is quantity * (rates.total + bid_price), as the search sums."""
    return CostTerms(
        shipping=quantity * rates.shipping,
        handling=quantity * rates.handling,
        store_penalty=quantity * rates.store_penalty,
        opportunity=quantity * bid_price,
        scenario=quantity * rates.scenario,
    )


def unserved_cost(policy: SourcingPolicy, line: OrderLine) -> float:
    return policy.unserved_unit_penalty * line.quantity
