"""Exact search for the cheapest ways to serve one order's lines from a set of candidates.

A plan groups the order's lines and gives each group to one candidate (or leaves it unfilled).
Its cost is, per group, the candidate's package cost plus the candidate's cost for each line in
the group, so the search works on line groups (at most 2^lines of them) rather than on node
subsets (200 nodes give 2.6 billion subsets of five):

1. For every group of lines, the K cheapest candidates able to serve the whole group (stock is
   checked per SKU, so two lines of the same SKU must fit together). The best plan only ever
   needs a group's cheapest candidate: swapping in a cheaper one (or merging the group into
   another shipment of that candidate) never costs more and never adds a shipment. Keeping K
   per group finds the runner-ups among plans that differ in which candidates ship.
2. Branch and bound over set partitions of the lines, groups tried biggest first (one package is
   usually cheapest), each group's candidates cheapest first; a partial plan is cut as soon as
   its cost plus a lower bound for the lines still open reaches the K-th best complete plan.

Every (group, candidate) step counts against a budget of evaluations, the deterministic stand-in
for a time limit. When it runs out, a greedy plan is built and the best found so far is kept.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

UNFILLED = -1
# Costs equal to this many decimals are ties; ties go to fewer packages, then lower candidates.
TIE_DECIMALS = 9


@dataclass(frozen=True)
class SearchProblem:
    """Numbers only: the optimizer turns nodes and lines into these arrays.

    `stock[c, s]` is what candidate c has of SKU s; `line_sku[l]` and `line_qty[l]` describe line
    l; `line_cost[c, l]` is candidate c's cost for line l (any value where c cannot serve l);
    `package[c]` is what c costs once per shipment; `unfilled[l]` what leaving l unfilled costs.
    Candidates are indexed in tie-break order: lower index wins ties.
    """

    package: np.ndarray
    line_cost: np.ndarray
    unfilled: np.ndarray
    stock: np.ndarray
    line_sku: list[int]
    line_qty: list[int]
    limit: int | None = None
    # Which groups may be one shipment among several (minimum shipment value); None: any.
    split_group_ok: Callable[[int], bool] | None = None
    # `_group_costs(self)`, when worked out already (see with_group_costs).
    group_cost: np.ndarray | None = None

    @property
    def n_lines(self) -> int:
        return len(self.line_sku)

    @property
    def n_candidates(self) -> int:
        return len(self.package)


@dataclass(frozen=True)
class Solution:
    cost: float
    groups: tuple[tuple[int, int], ...]  # (candidate or UNFILLED, line mask)
    candidates: tuple[int, ...] = field(init=False)
    unfilled_mask: int = field(init=False)

    def __post_init__(self) -> None:
        # Worked out once: the search compares solutions by these many times over.
        real = tuple(sorted(c for c, _ in self.groups if c != UNFILLED))
        object.__setattr__(self, "candidates", real)
        unfilled = sum(mask for c, mask in self.groups if c == UNFILLED)
        object.__setattr__(self, "unfilled_mask", unfilled)

    @property
    def key(self) -> tuple[tuple[int, ...], int]:
        return self.candidates, self.unfilled_mask

    def rank(self) -> tuple[float, int, tuple[int, ...], int]:
        return (round(self.cost, TIE_DECIMALS), len(self.candidates), *self.key)


@dataclass
class SearchResult:
    ranked: list[Solution]
    evaluated: int
    exhaustive: bool


@dataclass
class _Ranking:
    """The `size` cheapest solutions with distinct node sets seen so far."""

    size: int
    solutions: list[Solution] = field(default_factory=list)
    limit: float = float("inf")  # the cost a new solution must beat once the ranking is full

    def threshold(self) -> float:
        return self.limit

    def offer(self, solution: Solution) -> None:
        key = solution.key
        same = next((s for s in self.solutions if s.key == key), None)
        if same is not None:
            if same.rank() <= solution.rank():
                return
            self.solutions.remove(same)
        self.solutions.append(solution)
        self.solutions.sort(key=Solution.rank)
        del self.solutions[self.size :]
        if len(self.solutions) >= self.size:
            self.limit = self.solutions[-1].cost


class _BudgetSpent(Exception):
    pass


def search(problem: SearchProblem, keep: int, max_evaluations: int, exact: bool) -> SearchResult:
    """The `keep` cheapest plans with distinct node sets, best first."""
    ranking = _Ranking(size=max(keep, 1))
    evaluated = 0
    exhaustive = exact
    if exact:
        try:
            evaluated = _branch_and_bound(problem, ranking, max_evaluations)
        except _BudgetSpent:
            evaluated = max_evaluations
            exhaustive = False
    if not exhaustive:
        ranking.offer(_allowed_greedy(problem))
    return SearchResult(ranked=list(ranking.solutions), evaluated=evaluated, exhaustive=exhaustive)


def _branch_and_bound(problem: SearchProblem, ranking: _Ranking, max_evaluations: int) -> int:
    n = problem.n_lines
    full = (1 << n) - 1
    choices = _group_choices(problem, k=choices_per_group(ranking.size))
    lower_bound = _lower_bounds(problem).tolist()  # Python floats: the same values, faster
    limit = problem.limit
    evaluated = 0

    def branch(remaining: int, partial: float, used: int, shipments: int, groups: list) -> None:
        nonlocal evaluated
        if remaining == 0:
            _offer_if_allowed(problem, ranking, partial, groups, full)
            return
        low = remaining & -remaining
        rest = remaining ^ low
        sub = rest
        while True:
            group = sub | low
            tail_bound = lower_bound[remaining ^ group]
            for cost, cand in choices[group]:
                total = partial + cost
                if total + tail_bound >= ranking.limit:
                    break  # choices are cheapest first: the rest of this group can only be worse
                if cand != UNFILLED and ((used >> cand) & 1 or shipments == limit):
                    continue
                evaluated += 1
                if evaluated > max_evaluations:
                    raise _BudgetSpent
                groups.append((cand, group))
                if cand == UNFILLED:
                    branch(remaining ^ group, total, used, shipments, groups)
                else:
                    branch(remaining ^ group, total, used | (1 << cand), shipments + 1, groups)
                groups.pop()
            if sub == 0:
                break
            sub = (sub - 1) & rest

    branch(full, 0.0, 0, 0, [])
    return evaluated


def _offer_if_allowed(
    problem: SearchProblem, ranking: _Ranking, cost: float, groups: list, full: int
) -> None:
    if not _splits_allowed(problem, groups):
        return
    ranking.offer(Solution(cost=cost, groups=tuple(sorted(groups, key=lambda g: g[1]))))


def _splits_allowed(problem: SearchProblem, groups: Sequence[tuple[int, int]]) -> bool:
    """A plan of several shipments needs each to pass the minimum shipment value, if any."""
    real = [mask for cand, mask in groups if cand != UNFILLED]
    check = problem.split_group_ok
    return len(real) <= 1 or check is None or all(check(mask) for mask in real)


@lru_cache(maxsize=16)
def _subset_matrix(n: int) -> np.ndarray:
    """M[l, g] = 1 when line l is in group g; groups are the bit masks 0 .. 2^n - 1."""
    masks = np.arange(1 << n)
    matrix = ((masks[None, :] >> np.arange(n)[:, None]) & 1).astype(float)
    matrix.flags.writeable = False  # shared between calls
    return matrix


def with_group_costs(problem: SearchProblem) -> SearchProblem:
    """The problem with its group costs worked out, for the shortlist and the search to share."""
    if problem.group_cost is not None:
        return problem
    return replace(problem, group_cost=_group_costs(problem))


def _group_costs(problem: SearchProblem) -> np.ndarray:
    """cost[c, g]: candidate c shipping group g in one package; inf where its stock cannot."""
    if problem.group_cost is not None:
        return problem.group_cost
    n = problem.n_lines
    m = _subset_matrix(n)
    line_cost = np.where(np.isfinite(problem.line_cost), problem.line_cost, 0.0)
    cost = problem.package[:, None] + line_cost @ m
    if len(set(problem.line_sku)) == n:
        # Every line its own SKU: a group fits where each of its lines fits.
        misfits = (~_servable(problem)).astype(float) @ m
        cost[misfits > 0] = np.inf
        return cost
    feasible = np.ones(cost.shape, dtype=bool)
    qty = np.asarray(problem.line_qty, dtype=float)
    skus = np.asarray(problem.line_sku)
    for sku in sorted(set(problem.line_sku)):
        need = (qty * (skus == sku)) @ m
        feasible &= problem.stock[:, sku][:, None] >= need[None, :]
    cost[~feasible] = np.inf
    return cost


def _cheapest(cost: np.ndarray, k: int) -> np.ndarray:
    """Per group (column), its k cheapest candidates, the lower index first among equal costs:
    a stable sort, so that the same candidates come out of any subset that contains them."""
    if cost.shape[0] <= k:
        return np.broadcast_to(np.arange(cost.shape[0])[:, None], cost.shape)
    return np.argsort(cost, axis=0, kind="stable")[:k]


def shortlist(problem: SearchProblem, keep: int) -> np.ndarray:
    """The candidates the exact search can ever look at, in index order: per group of lines its
    k cheapest able to serve the whole group (k as `search` keeps, enough for `keep` ranked
    plans), and per line the candidate with its cheapest line cost (the search's lower bound).

    Exact: `_branch_and_bound` reads candidates only through `_group_choices` (those k per group)
    and `_lower_bounds` (those per-line minima). Restricted to this shortlist, with indices kept in
    the same order, every choice list, bound, threshold and tie-break is the same, so the search
    ranks the same plans and counts the same evaluations. Searching any superset of the shortlist
    gives the same shortlist again (the stable sort).

    Why k per group is enough for the best plan: in any plan, a group S at node n can move to S's
    cheapest node m without raising the cost; if m already ships a group T, merging S into T's
    package saves one package (the group cost is package + sum of line costs), and m can ship
    S and T together as long as no SKU repeats across the order's lines (stock is checked per
    SKU). A cart that repeats a SKU may need stock shared between lines at one node, so the
    optimizer does not shortlist it. The greedy fallback (budget spent) looks at every candidate:
    the optimizer searches them all when the shortlisted search is not exhaustive.
    """
    cost = _group_costs(problem)
    top = _cheapest(cost, k=choices_per_group(keep))
    picked = np.take_along_axis(cost, top, axis=0)
    listed = set(top[np.isfinite(picked)].tolist())
    servable = np.isfinite(problem.line_cost) & _servable(problem)
    per_line = np.where(servable, problem.line_cost, np.inf)
    for line in range(problem.n_lines):
        if servable[:, line].any():
            listed.add(int(np.argmin(per_line[:, line])))
    return np.array(sorted(listed), dtype=int)


def choices_per_group(keep: int) -> int:
    """How many candidates per group of lines the search keeps to rank `keep` plans."""
    return max(max(keep, 1), 2)


def _group_choices(problem: SearchProblem, k: int) -> list[list[tuple[float, int]]]:
    """Per group: its k cheapest candidates and the unfilled option, cheapest first."""
    cost = _group_costs(problem)
    unfilled = (problem.unfilled @ _subset_matrix(problem.n_lines)).tolist()
    top = _cheapest(cost, k)
    picked = np.take_along_axis(cost, top, axis=0)
    finite = np.isfinite(picked)
    costs, cands, ok = picked.T.tolist(), top.T.tolist(), finite.T.tolist()
    choices: list[list[tuple[float, int]]] = [[]]
    for group in range(1, cost.shape[1]):
        here = [(c, i) for c, i, f in zip(costs[group], cands[group], ok[group], strict=True) if f]
        here.append((unfilled[group], UNFILLED))
        here.sort(key=_choice_order)
        choices.append(here)
    return choices


def _choice_order(choice: tuple[float, int]) -> tuple[float, bool, int]:
    return round(choice[0], TIE_DECIMALS), choice[1] == UNFILLED, choice[1]


def _lower_bounds(problem: SearchProblem) -> np.ndarray:
    """For every set of open lines: no plan can serve them for less than each line's cheapest
    line cost anywhere (package costs left out, so the bound never overshoots)."""
    servable = np.isfinite(problem.line_cost) & _servable(problem)
    per_line = np.where(servable, problem.line_cost, np.inf).min(axis=0, initial=np.inf)
    cheapest = np.minimum(per_line, problem.unfilled)
    return cheapest @ _subset_matrix(problem.n_lines)


def _servable(problem: SearchProblem) -> np.ndarray:
    qty = np.asarray(problem.line_qty)
    return problem.stock[:, problem.line_sku] >= qty[None, :]


def _allowed_greedy(problem: SearchProblem) -> Solution:
    """Greedy ignores the minimum shipment value; when its split breaks it, one package it is."""
    solution = greedy(problem)
    if not _splits_allowed(problem, solution.groups):
        return greedy(replace(problem, limit=1))
    return solution


def greedy(problem: SearchProblem) -> Solution:
    """Repeatedly open the candidate that saves most against leaving its lines unfilled, then move
    lines to cheaper open candidates. Fast and usually close; used when the budget runs out."""
    servable = _servable(problem) & np.isfinite(problem.line_cost)
    assignment: dict[int, int] = {}  # line -> candidate
    open_lines = set(range(problem.n_lines))
    opened: list[int] = []
    while open_lines and (problem.limit is None or len(opened) < problem.limit):
        best = _best_opening(problem, servable, open_lines, opened)
        if best is None:
            break
        cand, lines = best
        opened.append(cand)
        for line in lines:
            assignment[line] = cand
            open_lines.discard(line)
    _move_lines_to_cheaper(problem, servable, assignment, opened)
    return _solution_from(problem, assignment)


def _best_opening(
    problem: SearchProblem, servable: np.ndarray, open_lines: set[int], opened: list[int]
) -> tuple[int, list[int]] | None:
    best: tuple[float, int, list[int]] | None = None
    for cand in range(problem.n_candidates):
        if cand in opened:
            continue
        lines = _fitting_lines(problem, servable, cand, sorted(open_lines))
        saving = sum(problem.unfilled[ln] - problem.line_cost[cand, ln] for ln in lines)
        saving -= problem.package[cand]
        if lines and saving > 0 and (best is None or saving > best[0] + 1e-12):
            best = (saving, cand, lines)
    return None if best is None else (best[1], best[2])


def _fitting_lines(
    problem: SearchProblem, servable: np.ndarray, cand: int, lines: list[int]
) -> list[int]:
    """Lines worth giving to `cand` that its stock can hold together, in line order."""
    left: dict[int, float] = {}
    fitting = []
    for line in lines:
        if not servable[cand, line] or problem.line_cost[cand, line] >= problem.unfilled[line]:
            continue
        sku = problem.line_sku[line]
        room = left.get(sku, problem.stock[cand, sku])
        if room >= problem.line_qty[line]:
            left[sku] = room - problem.line_qty[line]
            fitting.append(line)
    return fitting


def _move_lines_to_cheaper(
    problem: SearchProblem, servable: np.ndarray, assignment: dict[int, int], opened: list[int]
) -> None:
    for line in sorted(assignment):
        here = assignment[line]
        for cand in opened:
            cheaper = problem.line_cost[cand, line] < problem.line_cost[here, line] - 1e-12
            if cand != here and servable[cand, line] and cheaper:
                moved = {**assignment, line: cand}
                if _stock_holds(problem, moved, cand):
                    assignment[line] = cand
                    here = cand


def _stock_holds(problem: SearchProblem, assignment: dict[int, int], cand: int) -> bool:
    need: dict[int, int] = {}
    for line, c in assignment.items():
        if c == cand:
            sku = problem.line_sku[line]
            need[sku] = need.get(sku, 0) + problem.line_qty[line]
    return all(problem.stock[cand, sku] >= qty for sku, qty in need.items())


def _solution_from(problem: SearchProblem, assignment: dict[int, int]) -> Solution:
    groups: dict[int, int] = {}
    for line in range(problem.n_lines):
        cand = assignment.get(line, UNFILLED)
        groups[cand] = groups.get(cand, 0) | (1 << line)
    cost = 0.0
    for cand, mask in groups.items():
        lines = [ln for ln in range(problem.n_lines) if mask >> ln & 1]
        if cand == UNFILLED:
            cost += float(sum(problem.unfilled[ln] for ln in lines))
        else:
            cost += float(problem.package[cand] + sum(problem.line_cost[cand, ln] for ln in lines))
    return Solution(cost=cost, groups=tuple(sorted(groups.items(), key=lambda g: g[1])))
