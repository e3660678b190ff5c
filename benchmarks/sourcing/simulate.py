"""Run one policy over one instance's order stream and account for what it cost.

The cost is computed here from the assignment alone, with the published tariff, so that a policy
cannot flatter itself through its own cost model.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks.sourcing.instance import PACKAGE_COST, Instance
from benchmarks.sourcing.policies import Policy


@dataclass
class Outcome:
    policy: str
    total_cost: float
    orders: int
    packages: int
    single_package_orders: int
    unfilled_units: int
    decision_ms: list[float]
    lp_seconds: float = 0.0
    lp_solves: int = 0
    # The centres each order shipped from, in stream order (one package each): what parcel
    # grouping (grouping.py) regroups across orders.
    order_nodes: list[frozenset[int]] = field(default_factory=list)

    @property
    def packages_per_order(self) -> float:
        return self.packages / self.orders

    @property
    def single_package_share(self) -> float:
        return self.single_package_orders / self.orders

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.decision_ms, q))


class InfeasibleDecision(AssertionError):
    def __init__(self, policy: str, order_id: str, node: int, sku: int) -> None:
        super().__init__(f"{policy} took SKU {sku} from node {node} for {order_id}: no stock")


def simulate(instance: Instance, policy: Policy) -> Outcome:
    inventory = instance.inventory.copy()
    policy.start(instance)
    outcome = Outcome(policy.name, 0.0, len(instance.orders), 0, 0, 0, [])
    for t, order in enumerate(instance.orders):
        policy.before_order(t, inventory)
        started = time.perf_counter()
        picks = policy.decide(order, inventory)
        outcome.decision_ms.append((time.perf_counter() - started) * 1000)
        nodes = set()
        for sku, node in zip(order.skus, picks, strict=True):
            if node is None:
                outcome.unfilled_units += 1
                outcome.total_cost += instance.unserved_unit_penalty
                continue
            if inventory[node, sku] < 1:
                raise InfeasibleDecision(policy.name, order.order_id, node, sku)
            inventory[node, sku] -= 1
            nodes.add(node)
            outcome.total_cost += instance.unit_cost(node, order.region)
        outcome.packages += len(nodes)
        outcome.order_nodes.append(frozenset(nodes))
        outcome.single_package_orders += len(nodes) == 1
        outcome.total_cost += PACKAGE_COST * len(nodes)
    outcome.lp_seconds = getattr(policy, "lp_seconds", 0.0)
    outcome.lp_solves = getattr(policy, "lp_solves", 0)
    return outcome
