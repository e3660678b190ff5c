"""Sourcing: every decision about which node serves a cart or an order, and by when.

One room for the checkout's quote and the allocation's plan, so that the rules and the promise
arithmetic they rely on can be compared, tested and changed in one place. Pure functions: no
Temporal, no database, no HTTP, no clock; the caller passes everything in, including `now`.

    answer = check_cart(lines, destination, profiles, now, policy)  # the checkout's options
    plan = optimize(order, [NodeProfile(node=c) for c in candidates], policy, ruleset)

Modules: checkout (the checkout check: availability per line, and the delivery options as the
optimizer's scenarios), allocation (the allocation policy: the scenario an order is sourced
under, whole orders only, the promise kept or at risk), nearest (the nearest-node rule, a
baseline the benchmarks compare with), model (the optimizer's inputs and
outputs), rules (ruleset selection and node filters), costs (the cost model), promise (promised
dates, for the checkout and the optimizer alike), search (the exact search and its greedy
fallback), optimizer (puts them together), explain (the operator's sentence), bid_prices
(inventory-aware prices from the fluid LP), errors. Batch what-if runs over JSON files live in
benchmarks/sourcing/whatif.py, outside this package, which reads and writes nothing.

bid_prices is loaded on first use: it needs scipy, which the API process (the checkout's caller)
would otherwise pay for at start-up without ever using it.
"""

from typing import TYPE_CHECKING, Any

from sourcing.allocation import (
    ChosenPlan,
    ChosenShipment,
    OrderToSource,
    choose_sources,
    scenario_for,
)
from sourcing.checkout import (
    CheckoutAnswer,
    DeliveryOption,
    DeliveryOptionCode,
    LineAvailability,
    QuotedShipment,
    check_cart,
    pickup_store,
    shippable_totals,
)
from sourcing.errors import NoFeasiblePlan
from sourcing.model import (
    Alternative,
    CostBreakdown,
    NodeProfile,
    Plan,
    ProcessingCalendar,
    Reliability,
    Rule,
    Ruleset,
    Scenario,
    ScenarioWeights,
    SearchBudget,
    SourcedShipment,
    SourcingOrder,
    SourcingPolicy,
    TransitTable,
)
from sourcing.nearest import PlannedShipment, SourcingPlan, SourcingRequest, plan_nearest_node
from sourcing.optimizer import DEFAULT_BUDGET, DEFAULT_POLICY, optimize
from sourcing.promise import promised_date, ship_date
from sourcing.rules import DEFAULT_RULESET, select_ruleset

if TYPE_CHECKING:
    from sourcing.bid_prices import DemandClass, FluidSolution, compute_bid_prices, solve_fluid_lp

_BID_PRICES = frozenset({"DemandClass", "FluidSolution", "compute_bid_prices", "solve_fluid_lp"})

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_POLICY",
    "DEFAULT_RULESET",
    "Alternative",
    "CheckoutAnswer",
    "ChosenPlan",
    "ChosenShipment",
    "CostBreakdown",
    "DeliveryOption",
    "DeliveryOptionCode",
    "DemandClass",
    "FluidSolution",
    "LineAvailability",
    "NoFeasiblePlan",
    "NodeProfile",
    "OrderToSource",
    "Plan",
    "PlannedShipment",
    "ProcessingCalendar",
    "QuotedShipment",
    "Reliability",
    "Rule",
    "Ruleset",
    "Scenario",
    "ScenarioWeights",
    "SearchBudget",
    "SourcedShipment",
    "SourcingOrder",
    "SourcingPlan",
    "SourcingPolicy",
    "SourcingRequest",
    "TransitTable",
    "check_cart",
    "choose_sources",
    "compute_bid_prices",
    "optimize",
    "pickup_store",
    "plan_nearest_node",
    "promised_date",
    "scenario_for",
    "select_ruleset",
    "ship_date",
    "shippable_totals",
    "solve_fluid_lp",
]


def __getattr__(name: str) -> Any:
    if name in _BID_PRICES:
        from sourcing import bid_prices

        return getattr(bid_prices, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
