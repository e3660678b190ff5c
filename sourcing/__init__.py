"""Sourcing optimizer: pure functions from an order and candidate nodes to a costed plan.

No Temporal, no database, no HTTP, no clock: the caller passes everything in, including `now`.

    plan = optimize(order, [NodeProfile(node=c) for c in candidates], policy, ruleset)

Modules: model (inputs and outputs), rules (ruleset selection and node filters), costs (the cost
model), promise (promised dates), search (the exact search and its greedy fallback), optimizer
(puts them together), explain (the operator's sentence), bid_prices (inventory-aware prices from
the fluid LP), errors. Batch what-if runs over JSON files live in benchmarks/sourcing/whatif.py,
outside this package, which reads and writes nothing.
"""

from sourcing.bid_prices import DemandClass, FluidSolution, compute_bid_prices, solve_fluid_lp
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
from sourcing.optimizer import DEFAULT_BUDGET, DEFAULT_POLICY, optimize
from sourcing.promise import promised_date, ship_date
from sourcing.rules import DEFAULT_RULESET, select_ruleset

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_POLICY",
    "DEFAULT_RULESET",
    "Alternative",
    "CostBreakdown",
    "DemandClass",
    "FluidSolution",
    "NoFeasiblePlan",
    "NodeProfile",
    "Plan",
    "ProcessingCalendar",
    "Reliability",
    "Rule",
    "Ruleset",
    "Scenario",
    "ScenarioWeights",
    "SearchBudget",
    "SourcedShipment",
    "SourcingOrder",
    "SourcingPolicy",
    "TransitTable",
    "compute_bid_prices",
    "optimize",
    "promised_date",
    "select_ruleset",
    "ship_date",
    "solve_fluid_lp",
]
