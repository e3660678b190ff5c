"""Typed failures of sourcing, carrying what a caller needs to explain or act on them."""

from domain.errors import NoSourceAvailable
from domain.orders import OrderLine


class NoFeasiblePlan(NoSourceAvailable):
    """No eligible node can serve any line of the order.

    A subclass of the domain's NoSourceAvailable so that callers already backordering on that
    error keep working. `rejected_nodes` says why each candidate was left out (excluded, at daily
    capacity, filtered by a rule, holding none of the lines).
    """

    code = "no_feasible_plan"

    def __init__(
        self,
        lines: list[OrderLine],
        excluded_nodes: list[str],
        rejected_nodes: dict[str, str],
        ruleset: str | None,
    ) -> None:
        super().__init__(lines=lines, excluded_nodes=excluded_nodes)
        self.rejected_nodes = rejected_nodes
        self.ruleset = ruleset
