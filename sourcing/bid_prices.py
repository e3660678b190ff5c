"""Inventory-aware mode: what a unit at a node is worth to the orders still to come.

The fluid LP (Jasin & Sinha 2015; Acimovic & Graves 2015) serves the expected demand of the rest
of the horizon from the stock on hand at least cost. The dual price of a node's stock constraint
is the cost the network would avoid with one more unit there; charged as an opportunity cost when
sourcing one order, it keeps scarce units for the orders that need them most.

Demand comes as classes: a region and the SKUs one order holds (a region x SKU forecast is the
special case of one SKU per class). The LP's columns are fulfilment methods, one assignment of
each SKU of a class to a node (or to "unserved"), priced with one package per node used:

    min  sum_m cost_m x_m
    s.t. sum_{m of class c} x_m = expected orders of c      (dual sigma_c)
         sum_m units_m(node, sku) x_m <= stock(node, sku)   (dual -price(node, sku))
         x >= 0

Methods are exponentially many, so they are generated: a restricted LP is solved with
scipy.optimize.linprog (HiGHS); its stock duals price every class's best method exactly (the
line-group dynamic programme of search.py, vectorised over the regions of a class), and methods
that would lower the cost are added until none does. At every round sum_c orders_c *
best_method_c(prices) - prices . stock is a valid lower bound of the LP (Lagrangian duality),
so `objective` is a lower bound even when the round limit stops the generation early.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, Field
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from domain.geo import GeoPoint
from sourcing.model import LpClassPlan, LpMethod, basket_key

# Prices below this are solver noise, not scarcity.
PRICE_FLOOR = 1e-7
MAX_ROUNDS = 200
REDUCED_COST_TOLERANCE = 1e-7
RELATIVE_GAP = 1e-7
UNSERVED = -1


class DemandClass(BaseModel):
    region: str
    skus: dict[str, int] = Field(min_length=1, description="units of each SKU in one order")
    expected_orders: float = Field(ge=0)


class FulfilmentMethod(NamedTuple):
    """One way to serve an order of a class: each SKU's node, None for unserved."""

    region: str
    assignment: tuple[tuple[str, str | None], ...]  # (sku, node), sorted by sku


class FluidSolution(BaseModel):
    objective: float = Field(description="a lower bound of the LP's optimum (equal at the end)")
    restricted_objective: float = Field(description="the last restricted LP: an upper bound")
    expected_packages: float
    unserved_units: float
    rounds: int
    methods: int
    bid_prices: dict[tuple[str, str], float]
    # The methods the solution uses: passing the solution as `warm_start` to the next solve of a
    # similar LP (the same network later in the horizon) starts it where this one ended.
    basis: list[FulfilmentMethod] = []
    # Expected orders the solution sends by each method of `basis`, in the same order.
    basis_orders: list[float] = []


class FluidLpFailed(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"fluid LP failed ({status}): {message}")


# The share of the prices in force a refresh keeps (services.bid_prices, the sourcing benchmark).
DEFAULT_SMOOTHING = 0.5


def smoothed_bid_prices(
    in_force: Mapping[tuple[str, str], float],
    solved: Mapping[tuple[str, str], float],
    smoothing: float = DEFAULT_SMOOTHING,
) -> dict[tuple[str, str], float]:
    """The prices a refresh stores: `smoothing` x the prices in force + the rest x the new LP's.

    With stock close to expected demand the LP is degenerate: many dual solutions are optimal, and
    successive re-solves jump between vertices of that set, so which of two near-equal methods an
    order takes flips from one refresh to the next. Averaging successive duals (dual averaging)
    moves the prices towards the inside of the optimal set, where those ties are broken by the
    network's whole future rather than by the solver's pivoting. A (node, SKU) missing from one
    side is priced 0 there, so a scarcity that has passed fades out over a few refreshes."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), not {smoothing}")
    if not in_force or smoothing == 0.0:
        return dict(solved)
    blended = {
        key: smoothing * in_force.get(key, 0.0) + (1.0 - smoothing) * solved.get(key, 0.0)
        for key in in_force.keys() | solved.keys()
    }
    return {key: price for key, price in blended.items() if price > PRICE_FLOOR}


def compute_bid_prices(
    demand: Sequence[DemandClass],
    inventory: Mapping[tuple[str, str], float],
    unit_cost: Mapping[tuple[str, str], float],
    package_cost: float,
    unserved_unit_penalty: float,
) -> dict[tuple[str, str], float]:
    """(node, sku) -> opportunity cost of one unit; see solve_fluid_lp for the arguments."""
    return solve_fluid_lp(
        demand, inventory, unit_cost, package_cost, unserved_unit_penalty
    ).bid_prices


def class_plans(
    solution: FluidSolution,
    demand: Sequence[DemandClass],
    region_points: Mapping[str, GeoPoint],
    radius_km: float = 1.0,
) -> dict[str, list[LpClassPlan]]:
    """The solution's methods per demand class, as `SourcingPolicy.lp_plans` takes them:
    basket_key -> one plan per region, methods most used first. Methods that leave a line
    unserved are left out (an order follows only a method that serves it whole), and so are
    regions without a point."""
    baskets = {(d.region, tuple(sorted(d.skus))): d.skus for d in demand}
    by_class: dict[tuple[str, tuple[str, ...]], list[LpMethod]] = defaultdict(list)
    for method, orders in zip(solution.basis, solution.basis_orders, strict=True):
        nodes = dict(method.assignment)
        if any(node is None for node in nodes.values()) or orders <= PRICE_FLOOR:
            continue
        served = {sku: node for sku, node in nodes.items() if node is not None}
        by_class[(method.region, tuple(sorted(nodes)))].append(
            LpMethod(nodes=served, orders=orders)
        )
    plans: dict[str, list[LpClassPlan]] = defaultdict(list)
    for (region, skus), methods in sorted(by_class.items()):
        point = region_points.get(region)
        quantities = baskets.get((region, skus))
        if point is None or quantities is None:
            continue
        methods.sort(key=lambda m: (-m.orders, sorted(m.nodes.items())))
        plans[basket_key(quantities)].append(
            LpClassPlan(region=region, destination=point, radius_km=radius_km, methods=methods)
        )
    return dict(plans)


def solve_fluid_lp(
    demand: Sequence[DemandClass],
    inventory: Mapping[tuple[str, str], float],
    unit_cost: Mapping[tuple[str, str], float],
    package_cost: float,
    unserved_unit_penalty: float,
    max_rounds: int = MAX_ROUNDS,
    warm_start: "FluidSolution | None" = None,
) -> FluidSolution:
    """`inventory[(node, sku)]`: units on hand; `unit_cost[(node, region)]`: cost of one unit on
    that lane (no entry: the node does not serve the region); `package_cost`: per package;
    `unserved_unit_penalty`: per unit left unserved. Every (node, sku) of `inventory` is priced,
    zero where stock is not scarce."""
    net = _Network.build(demand, inventory, unit_cost, package_cost, unserved_unit_penalty)
    if len(net.orders) == 0:
        return FluidSolution(
            objective=0.0,
            restricted_objective=0.0,
            expected_packages=0.0,
            unserved_units=0.0,
            rounds=0,
            methods=0,
            bid_prices=net.price_map(np.zeros(len(net.stock))),
        )
    master = _Master(net)
    best_bound = _seed(net, master, warm_start)
    rounds, best_bound = _generate(net, master, best_bound, max_rounds)
    return FluidSolution(
        objective=float(min(best_bound, master.objective)),
        restricted_objective=float(master.objective),
        expected_packages=master.expected("packages"),
        unserved_units=master.expected("unserved"),
        rounds=rounds,
        methods=len(master.cost),
        bid_prices=net.price_map(master.prices),
        basis=master.basis(),
        basis_orders=master.basis_orders(),
    )


def _seed(net: "_Network", master: "_Master", warm_start: "FluidSolution | None") -> float:
    """First columns: leaving each order unserved (keeps the master feasible), each class's best
    method at the starting prices, and a previous solve's methods. Returns the first bound."""
    master.add(_unserved_methods(net))
    start = np.zeros(len(net.stock))
    if warm_start is not None:
        # A later solve of the same network usually needs only a few more methods.
        master.add([m for m in map(net.method_from, warm_start.basis) if m is not None])
        start = net.price_vector(warm_start.bid_prices)
    found, bound = _price(net, start)
    master.add(found)
    return bound


def _generate(
    net: "_Network", master: "_Master", best_bound: float, max_rounds: int
) -> tuple[int, float]:
    """Solve the master, price at its duals, add what improves; stop when nothing does or the
    master's cost meets the best Lagrangian bound."""
    rounds = 0
    converged = False
    while rounds < max_rounds and not converged:
        rounds += 1
        upper = master.solve()
        found, bound = _price(net, master.prices)
        best_bound = max(best_bound, bound)
        converged = upper - best_bound <= RELATIVE_GAP * max(1.0, abs(upper))
        improving = [m for m in found if master.reduced_cost(m) < -REDUCED_COST_TOLERANCE]
        converged = converged or not master.add(improving)
    return rounds, best_bound


def _unserved_methods(net: "_Network") -> list["_Method"]:
    """Leaving a whole order unserved: the column that keeps every restricted LP feasible."""
    methods = []
    for group in net.groups:
        units = float(sum(group.quantities))
        for cls in group.members:
            assignment = tuple((sku, UNSERVED) for sku in group.skus)
            methods.append(_Method(int(cls), units * net.penalty, (), 0, units, assignment))
    return methods


@dataclass
class _Network:
    """Demand and stock as arrays: classes grouped by the SKUs they hold."""

    stock_keys: list[tuple[str, str]]
    stock: np.ndarray  # per stock row
    all_keys: list[tuple[str, str]]
    nodes: list[str]
    skus: list[str]
    stock_row: np.ndarray  # (node, sku) -> row, -1 when none on hand
    lanes: np.ndarray  # (region, node) unit cost, inf where no lane
    orders: np.ndarray  # per class
    class_region: np.ndarray
    groups: list["_ClassGroup"]
    package_cost: float
    penalty: float
    regions: list[str]
    sku_at: dict[str, int]
    node_at: dict[str, int]
    class_at: dict[tuple[str, tuple[int, ...]], tuple["_ClassGroup", int]]

    @staticmethod
    def build(
        demand: Sequence[DemandClass],
        inventory: Mapping[tuple[str, str], float],
        unit_cost: Mapping[tuple[str, str], float],
        package_cost: float,
        penalty: float,
    ) -> "_Network":
        classes = [d for d in demand if d.expected_orders > 0]
        stock_keys = sorted(k for k, v in inventory.items() if v > 0)
        nodes = sorted({n for n, _ in inventory})
        skus = sorted({s for _, s in inventory} | {s for d in classes for s in d.skus})
        regions = sorted({d.region for d in classes})
        node_at = {n: i for i, n in enumerate(nodes)}
        sku_at = {s: i for i, s in enumerate(skus)}
        stock_row = np.full((len(nodes), len(skus)), -1)
        for row, (node, sku) in enumerate(stock_keys):
            stock_row[node_at[node], sku_at[sku]] = row
        lanes = np.full((len(regions), len(nodes)), np.inf)
        for r, region in enumerate(regions):
            for n, node in enumerate(nodes):
                lanes[r, n] = unit_cost.get((node, region), np.inf)
        region_at = {r: i for i, r in enumerate(regions)}
        by_skus: dict[tuple[tuple[int, int], ...], list[int]] = defaultdict(list)
        for c, d in enumerate(classes):
            by_skus[tuple(sorted((sku_at[s], q) for s, q in d.skus.items()))].append(c)
        class_region = np.array([region_at[d.region] for d in classes], dtype=int)
        groups = [
            _ClassGroup(np.array(members), [s for s, _ in key], [q for _, q in key])
            for key, members in sorted(by_skus.items())
        ]
        class_at = {
            (classes[c].region, tuple(sorted(g.skus))): (g, int(c))
            for g in groups
            for c in g.members
        }
        return _Network(
            stock_keys=stock_keys,
            stock=np.array([inventory[k] for k in stock_keys], dtype=float),
            all_keys=sorted(inventory),
            nodes=nodes,
            skus=skus,
            stock_row=stock_row,
            lanes=lanes,
            orders=np.array([d.expected_orders for d in classes], dtype=float),
            class_region=class_region,
            groups=groups,
            package_cost=package_cost,
            penalty=penalty,
            regions=regions,
            sku_at=sku_at,
            node_at=node_at,
            class_at=class_at,
        )

    def method_from(self, method: FulfilmentMethod) -> "_Method | None":
        """An earlier solve's method in this network's terms; None when it no longer fits (the
        class has no demand left, or a node has run out of a SKU it used)."""
        skus = tuple(sorted(self.sku_at.get(s, -1) for s, _ in method.assignment))
        found = self.class_at.get((method.region, skus))
        if found is None:
            return None
        group, cls = found
        node_of = dict(method.assignment)
        nodes = []
        for sku in group.skus:
            name = node_of[self.skus[sku]]
            node = UNSERVED if name is None else self.node_at.get(name, -2)
            if node == -2 or (node != UNSERVED and self.stock_row[node, sku] < 0):
                return None
            nodes.append(node)
        if not np.all(
            np.isfinite([self.lanes[self.class_region[cls], n] for n in nodes if n >= 0])
        ):
            return None
        return _method_of(self, group, cls, nodes)

    def describe(self, method: "_Method") -> FulfilmentMethod:
        region = self.regions[self.class_region[method.cls]]
        return FulfilmentMethod(
            region,
            tuple(
                (self.skus[sku], None if node == UNSERVED else self.nodes[node])
                for sku, node in method.assignment
            ),
        )

    def price_vector(self, prices: Mapping[tuple[str, str], float]) -> np.ndarray:
        return np.array([prices.get(key, 0.0) for key in self.stock_keys], dtype=float)

    def price_map(self, prices: np.ndarray) -> dict[tuple[str, str], float]:
        result = dict.fromkeys(self.all_keys, 0.0)
        for key, price in zip(self.stock_keys, prices, strict=True):
            result[key] = round(float(price), 6) if price > PRICE_FLOOR else 0.0
        return result


@dataclass
class _ClassGroup:
    members: np.ndarray  # class indices
    skus: list[int]
    quantities: list[int]
    masks: np.ndarray = field(init=False)  # (line, line group) 0/1

    def __post_init__(self) -> None:
        n = len(self.skus)
        groups = np.arange(1 << n)
        self.masks = ((groups[None, :] >> np.arange(n)[:, None]) & 1).astype(float)


@dataclass(frozen=True)
class _Method:
    cls: int
    cost: float
    usage: tuple[tuple[int, float], ...]  # (stock row, units)
    packages: int
    unserved: float
    assignment: tuple[tuple[int, int], ...]  # (sku index, node index or UNSERVED)


def _price(net: _Network, prices: np.ndarray) -> tuple[list[_Method], float]:
    """Every class's cheapest method at these prices, and the Lagrangian bound they give:
    sum_c orders_c * cheapest_c - prices . stock, a lower bound of the LP for any prices >= 0."""
    found: list[_Method] = []
    bound = -float(prices @ net.stock)
    for group in net.groups:
        best, choice = _cheapest_methods(net, group, prices)
        bound += float(net.orders[group.members] @ best)
        found.extend(
            _method(net, group, int(cls), choice[i]) for i, cls in enumerate(group.members)
        )
    return found, bound


def _cheapest_methods(
    net: _Network, group: _ClassGroup, prices: np.ndarray
) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """Per class of the group: the cheapest method's priced cost and its (node, line group)s.

    Line groups are solved first (cheapest node for each group of lines, or unserved), then a
    dynamic programme over subsets of lines joins groups into the cheapest partition."""
    regions = net.class_region[group.members]
    qty = np.asarray(group.quantities, dtype=float)
    rows = net.stock_row[:, group.skus]  # (node, line)
    priced = np.where(rows >= 0, prices[np.maximum(rows, 0)], np.inf)  # (node, line)
    per_line = qty[None, None, :] * (net.lanes[regions][:, :, None] + priced[None, :, :])
    finite = np.isfinite(per_line)
    group_cost = net.package_cost + np.where(finite, per_line, 0.0) @ group.masks
    reachable = (~finite).astype(float) @ group.masks == 0
    group_cost = np.where(reachable, group_cost, np.inf)  # (class, node, line group)
    best_node = np.argmin(group_cost, axis=1)
    best = np.take_along_axis(group_cost, best_node[:, None, :], axis=1)[:, 0, :]
    unserved = (qty * net.penalty) @ group.masks
    use_node = best <= unserved[None, :]
    best = np.where(use_node, best, unserved[None, :])
    owner = np.where(use_node, best_node, UNSERVED)
    return _join_groups(best, owner, len(group.skus))


def _join_groups(
    best: np.ndarray, owner: np.ndarray, n: int
) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    full = (1 << n) - 1
    classes = best.shape[0]
    dp = np.zeros((classes, full + 1))
    pick = np.zeros((classes, full + 1), dtype=int)
    for mask in range(1, full + 1):
        low = mask & -mask
        rest = mask ^ low
        options, subs = [], []
        sub = rest
        while True:
            group = sub | low
            options.append(best[:, group] + dp[:, mask ^ group])
            subs.append(group)
            if sub == 0:
                break
            sub = (sub - 1) & rest
        stacked = np.stack(options, axis=1)
        at = np.argmin(stacked, axis=1)
        dp[:, mask] = stacked[np.arange(classes), at]
        pick[:, mask] = np.asarray(subs)[at]
    choices = []
    for c in range(classes):
        parts, mask = [], full
        while mask:
            group = int(pick[c, mask])
            parts.append((int(owner[c, group]), group))
            mask ^= group
        choices.append(parts)
    return dp[:, full], choices


def _method(net: _Network, group: _ClassGroup, cls: int, parts: list[tuple[int, int]]) -> _Method:
    node_of = {}
    for node, mask in parts:
        for i in range(len(group.skus)):
            if mask >> i & 1:
                node_of[i] = node
    return _method_of(net, group, cls, [node_of[i] for i in range(len(group.skus))])


def _method_of(net: _Network, group: _ClassGroup, cls: int, nodes: list[int]) -> _Method:
    """A column: each line of the class's group shipped from `nodes[line]` (or UNSERVED)."""
    region = net.class_region[cls]
    cost, unserved = 0.0, 0.0
    usage: list[tuple[int, float]] = []
    for sku, qty, node in zip(group.skus, group.quantities, nodes, strict=True):
        if node == UNSERVED:
            cost += qty * net.penalty
            unserved += qty
        else:
            cost += qty * net.lanes[region, node]
            usage.append((int(net.stock_row[node, sku]), float(qty)))
    packages = len({n for n in nodes if n != UNSERVED})
    cost += packages * net.package_cost
    assignment = tuple(zip(group.skus, nodes, strict=True))
    return _Method(cls, cost, tuple(usage), packages, unserved, assignment)


class _Master:
    """The restricted LP over the methods generated so far."""

    def __init__(self, net: _Network) -> None:
        self.net = net
        self.methods: list[_Method] = []
        self.cls: list[int] = []
        self.cost: list[float] = []
        self.packages: list[int] = []
        self.unserved: list[float] = []
        self.entries: list[tuple[int, int, float]] = []
        self.seen: set[tuple[int, tuple[tuple[int, float], ...]]] = set()
        self.sigma: np.ndarray | None = None
        self.prices = np.zeros(len(net.stock))
        self.objective = np.inf
        self.x = np.zeros(0)

    def add(self, methods: list[_Method]) -> int:
        added = 0
        for m in methods:
            key = (m.cls, m.usage)
            if key in self.seen:
                continue
            self.seen.add(key)
            col = len(self.cost)
            self.methods.append(m)
            self.cls.append(m.cls)
            self.cost.append(m.cost)
            self.packages.append(m.packages)
            self.unserved.append(m.unserved)
            self.entries.extend((row, col, units) for row, units in m.usage)
            added += 1
        return added

    def solve(self) -> float:
        n = len(self.cost)
        classes = len(self.net.orders)
        a_eq = coo_matrix((np.ones(n), (self.cls, np.arange(n))), shape=(classes, n)).tocsr()
        rows, cols, vals = zip(*self.entries, strict=True) if self.entries else ((), (), ())
        a_ub = coo_matrix((vals, (rows, cols)), shape=(len(self.net.stock), n)).tocsr()
        res = linprog(
            np.array(self.cost),
            A_ub=a_ub,
            b_ub=self.net.stock,
            A_eq=a_eq,
            b_eq=self.net.orders,
            bounds=(0, None),
            # Measured on the benchmark's masters (2,700 rows, 15,000 columns): interior point
            # with crossover beats both simplex codes, and presolve finds nothing to remove.
            method="highs-ipm",
            options={"presolve": False},
        )
        if res.status != 0:
            raise FluidLpFailed(res.status, res.message)
        self.objective = float(res.fun)
        self.sigma = np.asarray(res.eqlin.marginals)
        self.prices = np.maximum(-np.asarray(res.ineqlin.marginals), 0.0)
        self.x = np.asarray(res.x)
        return self.objective

    def reduced_cost(self, method: _Method) -> float:
        assert self.sigma is not None, "solve the master first"
        used = sum(self.prices[row] * units for row, units in method.usage)
        return method.cost + used - self.sigma[method.cls]

    def basis(self) -> list[FulfilmentMethod]:
        return [self.net.describe(m) for m, x in zip(self.methods, self.x, strict=True) if x > 0]

    def basis_orders(self) -> list[float]:
        return [float(x) for x in self.x if x > 0]

    def expected(self, what: str) -> float:
        weights = self.packages if what == "packages" else self.unserved
        return float(np.dot(self.x, weights)) if len(self.x) else 0.0
