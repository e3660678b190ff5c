"""An in-process copy of every position's available-to-promise for the checkout hot path.

Reads on the checkout path must not cost a database round trip per request. The cache loads all
positions once, then tails the append-only stock movements every `refresh_seconds` and re-reads
only the positions they touched (ledger.movement_tail: also those of a transaction that commits
after later ones), so it trails the ledger by about that interval. It is advisory:
holds and reservations are always taken by the database's conditional UPDATE, which is what
prevents overselling.

Layout: every node gets a number when first seen; per SKU the cache keeps two numpy arrays (the
numbers of the nodes holding a position, and each position's ATP from `domain.availability.atp`),
and the active network is an immutable snapshot of arrays indexed by node number (replaced only
when a node or pool changes). What a channel may sell of a SKU at every node
(`domain.availability.ChannelShares`) is kept per (SKU, channel) until that SKU's stock or the
network changes. A checkout check then costs a few array operations whatever the network's size,
and builds `CandidateNode` objects only for the handful of nodes that can change its answer
(`checkout_rows`, then `candidates_at` for the nodes sourcing says matter).
"""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from math import cos, floor, pi, radians, sin

import numpy as np
from sqlalchemy import Engine, select, tuple_
from sqlmodel import col

from domain.availability import ChannelPoolRule, ChannelShares, atp
from domain.geo import EARTH_RADIUS_KM, GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import OrderLine
from ledger import movement_tail
from ledger.availability import pool_rule
from ledger.tables import Channel, ChannelPool, Node, Sku, StockMovement, StockPosition

NETWORK_REFRESH_SECONDS = 5.0
# Past this many new movements since the last refresh (a bulk import, a large snapshot), the
# tail would re-read its positions 500 at a time for minutes: everything is reloaded instead,
# in one pass, while the last good copy keeps serving.
FULL_RELOAD_MOVEMENTS = 200_000
# Nearest nodes are shortlisted by the cosine of their angle to the destination (a dot product
# of unit vectors: one array operation), and the exact scalar `distance_km` then decides among the
# shortlist. Both computations are exact to ~1e-15 in that cosine; anything within this margin of
# the best is shortlisted, so the node `distance_km` finds nearest, and every node tied with it,
# is always on the shortlist (the margin is ~1 mm at 100 km, ~10 m at 0 km).
SHORTLIST_MARGIN_COS = 1e-12
RADIUS_MARGIN = 1e-3  # relative: 50 m at 50 km
# Pickup stores are found in a grid of cells of this side (NodeTable.pickup_stores_near) when
# the caller's radius is shorter: the checkout's PICKUP_RADIUS_KM.
NEAR_CELL_KM = 60.0
_CELL = NEAR_CELL_KM / EARTH_RADIUS_KM

_EMPTY = np.zeros(0, dtype=np.int64)
SkuStock = tuple[np.ndarray, np.ndarray]  # node numbers, ATP at each
MAX_VIEWS = 200_000  # (SKU, channel) views kept; past that they are rebuilt as needed


@dataclass
class _Network:
    """The active nodes as arrays indexed by node number; replaced whole, never mutated (apart
    from the lazily filled `shares`)."""

    templates: list[CandidateNode | None]  # None: an inactive node, or a number with no node row
    node_ids: list[str]
    active: np.ndarray
    can_ship: np.ndarray
    can_pickup: np.ndarray
    inactive: np.ndarray  # the numbers of inactive nodes
    unit_vectors: np.ndarray  # (nodes, 3): each node's position on the unit sphere
    roles: np.ndarray  # (2, nodes): can ship, can pickup (False for inactive nodes)
    ships: np.ndarray  # int64 1 where the node can ship, for shippable totals by matmul
    pools: dict[str, ChannelPoolRule]
    node_types: list[str]
    table: "NodeTable"
    shares: dict[str | None, ChannelShares] = field(default_factory=dict)

    def shares_for(self, channel: str) -> ChannelShares:
        pool = self.pools.get(channel)
        key = pool.channel if pool is not None else None
        shares = self.shares.get(key)
        if shares is None:
            shares = self.shares[key] = ChannelShares(self.node_ids, self.node_types, pool)
        return shares


@dataclass(frozen=True)
class NodeTable:
    """The active nodes of one network snapshot, one row per node in sourcing's tie-break order
    (priority, then node id): what the checkout reads of a node besides its stock, as arrays.
    Replaced with the snapshot, never mutated: a caller may key its own derived arrays on it."""

    numbers: np.ndarray  # each row's node number
    node_ids: list[str]
    node_types: list[NodeType]
    lat: np.ndarray
    lon: np.ndarray
    can_ship: np.ndarray
    can_pickup: np.ndarray
    unit_vectors: np.ndarray  # (rows, 3)
    row_of: np.ndarray  # by node number: its row, -1 for an inactive node
    # Built on first use (then its only entry): grid cell -> the pickup stores' rows in it and
    # in the cells around it.
    _near: list[dict[tuple[int, int, int], np.ndarray]] = field(
        default_factory=list, compare=False, repr=False
    )
    _vectors: list[list[tuple[float, float, float]]] = field(
        default_factory=list, compare=False, repr=False
    )

    def __len__(self) -> int:
        return len(self.node_ids)

    def vectors(self) -> list[tuple[float, float, float]]:
        """`unit_vectors` as Python tuples, built on first use."""
        if not self._vectors:
            self._vectors.append([tuple(v) for v in self.unit_vectors.tolist()])
        return self._vectors[0]

    def pickup_stores_near(self, toward: tuple[float, float, float]) -> np.ndarray:
        """The rows (sorted) of the pickup stores in the grid cells next to the unit vector
        `toward`: every pickup store within NEAR_CELL_KM of it, and a few beyond. The grid
        divides the unit vectors' cube into cells of that great-circle length as a side, which
        is longer than the straight line it spans: two points that near differ by at most one
        cell in each coordinate, whatever the latitude."""
        if not self._near:
            near: dict[tuple[int, int, int], list[int]] = {}
            stores = np.flatnonzero(self.can_pickup).tolist()
            for row, vector in zip(stores, self.unit_vectors[stores].tolist(), strict=True):
                x, y, z = (floor(v / _CELL) for v in vector)
                for dx in (-1, 0, 1):
                    for dy in (-1, 0, 1):
                        for dz in (-1, 0, 1):
                            near.setdefault((x + dx, y + dy, z + dz), []).append(row)
            # Appended whole: a request meanwhile builds its own, and either serves.
            self._near.append({cell: np.array(rows, dtype=np.int64) for cell, rows in near.items()})
        x, y, z = toward
        return self._near[0].get((floor(x / _CELL), floor(y / _CELL), floor(z / _CELL)), _EMPTY)


@dataclass(frozen=True)
class CheckoutRows:
    """One cart as a channel sees it: the rows of `table` (indices) whose nodes can sell some of
    its SKUs (as `AvailabilityCache.candidates` lists them, here in table order), their units of
    each SKU (columns: `skus`, sorted), and per SKU the units over every shipping node."""

    table: NodeTable
    skus: list[str]
    shippable: dict[str, int]
    every_row: np.ndarray  # (len(table), len(skus)), int64: the units at every row, 0 or not

    @cached_property
    def rows(self) -> np.ndarray:
        return np.flatnonzero(self.every_row.any(axis=1))

    @cached_property
    def units(self) -> np.ndarray:
        """(len(rows), len(skus)), int64."""
        return self.every_row[self.rows]


def _unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    lat, lon = radians(lat), radians(lon)
    return cos(lat) * cos(lon), cos(lat) * sin(lon), sin(lat)


@dataclass
class _SkuView:
    """One SKU as one channel sees it, for one stock array and one network snapshot: built on
    first use, dropped when either changes."""

    stock: SkuStock
    network: _Network
    units: list[int]  # by node number; 0 where the channel may sell none or the node is inactive
    array: np.ndarray  # the same, as an array
    shippable: int  # summed over the nodes that ship
    holders: dict[int, np.ndarray] = field(default_factory=dict)  # quantity -> nodes with that many
    by_row: np.ndarray | None = None  # `array` in the order of the network's table

    def table_units(self) -> np.ndarray:
        if self.by_row is None:
            self.by_row = self.array[self.network.table.numbers]
        return self.by_row

    def holding(self, quantity: int) -> np.ndarray:
        mask = self.holders.get(quantity)
        if mask is None:
            mask = self.array >= quantity
            if quantity <= 16:
                self.holders[quantity] = mask
        return mask


_NO_NETWORK = _Network(
    templates=[],
    node_ids=[],
    active=np.zeros(0, dtype=bool),
    can_ship=np.zeros(0, dtype=bool),
    can_pickup=np.zeros(0, dtype=bool),
    inactive=_EMPTY,
    unit_vectors=np.zeros((0, 3)),
    roles=np.zeros((2, 0), dtype=bool),
    ships=_EMPTY,
    pools={},
    node_types=[],
    table=NodeTable(
        numbers=_EMPTY,
        node_ids=[],
        node_types=[],
        lat=np.zeros(0),
        lon=np.zeros(0),
        can_ship=np.zeros(0, dtype=bool),
        can_pickup=np.zeros(0, dtype=bool),
        unit_vectors=np.zeros((0, 3)),
        row_of=_EMPTY,
    ),
)


class AvailabilityCache:
    def __init__(
        self,
        engine: Engine,
        refresh_seconds: float = 0.05,
        on_loaded: Callable[[], None] | None = None,
        network_refresh_seconds: float = NETWORK_REFRESH_SECONDS,
        full_reload_movements: int = FULL_RELOAD_MOVEMENTS,
    ) -> None:
        """`on_loaded` runs once the first load is complete, just before `ready` turns true.
        New nodes and pools are seen within `network_refresh_seconds`, new stock (of new SKUs
        and nodes too) within `refresh_seconds`."""
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._network_refresh_seconds = network_refresh_seconds
        self._full_reload_movements = full_reload_movements
        self.full_reloads = 0  # loads after the first, because the tail was too long
        self._on_loaded = on_loaded
        self._stock: dict[str, SkuStock] = {}
        self._node_numbers: dict[str, int] = {}  # written by the loading thread only
        self._network = _NO_NETWORK
        self._retired_skus: frozenset[str] = frozenset()
        self._retired_channels: frozenset[str] = frozenset()
        self._inventory_aware_channels: frozenset[str] = frozenset()
        self._shipment_limits: dict[str, int] = {}
        self._calendar_columns: dict[str, tuple[list[int], list[str], str, str, int]] = {}
        self._views: dict[tuple[str, str], _SkuView] = {}
        self._highest: dict[str, tuple[np.ndarray, int]] = {}  # SKU -> its node numbers, the top
        self._tail = movement_tail.Tail()
        self._network_loaded_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = False

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="availability-cache", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        self.load()
        while not self._stop.wait(self._refresh_seconds):
            try:
                self.refresh()
            except Exception:  # a failed refresh keeps the last good copy; the next one retries
                time.sleep(1)

    def load(self) -> None:
        with self._engine.connect() as c:
            # Read before the positions: what commits after is read again by the tail. Ids
            # below the latest not yet committed are its gaps from the start, looked for among
            # the last `full_reload_movements` (a longer tail would reload everything anyway).
            latest = movement_tail.latest_id(c)
            start = movement_tail.Tail(max(0, latest - self._full_reload_movements))
            _, self._tail = movement_tail.read(c, start, [], latest, time.time())
            gathered: dict[str, tuple[list[int], list[int]]] = {}
            number = self._number
            for node_id, sku, *counters in c.execute(_POSITION_COLUMNS):
                entry = gathered.get(sku)
                if entry is None:
                    entry = gathered[sku] = ([], [])
                entry[0].append(number(node_id))
                entry[1].append(atp(*counters))
        # Swapped in whole: until here requests read the previous copy.
        self._stock = {sku: _arrays(nodes, units) for sku, (nodes, units) in gathered.items()}
        self._views = {}  # views of the previous copy would only hold its arrays in memory
        self._load_network()
        if self._on_loaded is not None and not self.ready:
            self._on_loaded()
        self.ready = True

    def refresh(self) -> None:
        with self._engine.connect() as c:
            latest = movement_tail.latest_id(c)
            reload = latest - self._tail.position > self._full_reload_movements
            if not reload and (latest > self._tail.position or self._tail.gaps):
                touched, tail = movement_tail.read(
                    c, self._tail, _TOUCHED_COLUMNS, latest, time.time()
                )
                self._reread(c, list(dict.fromkeys(touched)))
                self._tail = tail
        if reload:
            self.load()
            self.full_reloads += 1
        elif time.monotonic() - self._network_loaded_at > self._network_refresh_seconds:
            self._load_network()

    def _reread(self, connection, pairs: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
        for start in range(0, len(pairs), 500):
            chunk = pairs[start : start + 500]
            rows = connection.execute(
                _POSITION_COLUMNS.where(
                    tuple_(col(StockPosition.node_id), col(StockPosition.sku)).in_(chunk)
                )
            )
            changes: dict[str, dict[int, int]] = {}
            for node_id, sku, *counters in rows:
                changes.setdefault(sku, {})[self._number(node_id)] = atp(*counters)
            for sku, changed in changes.items():
                nodes, units = self._stock.get(sku, (_EMPTY, _EMPTY))
                merged = dict(zip(nodes.tolist(), units.tolist(), strict=True))
                merged.update(changed)
                # copy-on-write: a request holding the old pair keeps a consistent view
                self._stock[sku] = _arrays(list(merged), list(merged.values()))

    def _number(self, node_id: str) -> int:
        number = self._node_numbers.get(node_id)
        if number is None:
            number = self._node_numbers[node_id] = len(self._node_numbers)
        return number

    def _load_network(self) -> None:
        with self._engine.connect() as c:
            nodes = {row.node_id: row for row in c.execute(select(Node)).all()}
            pools = {row.channel: pool_rule(row) for row in c.execute(select(ChannelPool)).all()}
            # Retired SKUs are not quoted from memory: the database path refuses them by name.
            self._retired_skus = frozenset(
                c.execute(select(Sku.sku).where(col(Sku.active).is_(False))).scalars()
            )
            self._retired_channels = frozenset(
                c.execute(select(Channel.channel).where(col(Channel.active).is_(False))).scalars()
            )
            # Bid prices are not kept in memory: these channels' carts are checked in the database.
            self._inventory_aware_channels = frozenset(
                c.execute(
                    select(Channel.channel).where(col(Channel.inventory_aware).is_(True))
                ).scalars()
            )
            # Channels limiting their orders' shipments, and the limit their carts are quoted under.
            self._shipment_limits = {
                channel: limit
                for channel, limit in c.execute(
                    select(Channel.channel, Channel.max_shipments_per_order).where(
                        col(Channel.max_shipments_per_order).is_not(None)
                    )
                ).all()
            }
        # The calendar columns sourcing dates shipments with (services.sourcing_inputs).
        self._calendar_columns = {
            node_id: (
                list(n.working_days),
                list(n.holidays),
                n.cutoff_time,
                n.timezone,
                n.processing_days,
            )
            for node_id, n in nodes.items()
        }
        for node_id in nodes:
            self._number(node_id)
        node_ids = list(self._node_numbers)  # in number order
        rows = [nodes.get(node_id) for node_id in node_ids]
        templates = [_candidate(n) if n is not None and n.active else None for n in rows]
        old = self._network
        if old.node_ids == node_ids and old.templates == templates and old.pools == pools:
            self._network_loaded_at = time.monotonic()  # unchanged: keep the snapshot and views
            return
        active = np.array([t is not None for t in templates], dtype=bool)
        can_ship = np.array([bool(t and t.can_ship) for t in templates], dtype=bool)
        can_pickup = np.array([bool(t and t.can_pickup) for t in templates], dtype=bool)
        unit_vectors = np.array(
            [
                _unit_vector(t.location.lat, t.location.lon) if t else (0.0, 0.0, 0.0)
                for t in templates
            ],
            dtype=np.float64,
        ).reshape(-1, 3)
        self._network = _Network(
            templates=templates,
            node_ids=node_ids,
            active=active,
            can_ship=can_ship,
            can_pickup=can_pickup,
            inactive=np.flatnonzero(~active),
            unit_vectors=unit_vectors,
            roles=np.array([can_ship, can_pickup], dtype=bool).reshape(2, -1),
            ships=can_ship.astype(np.int64),
            pools=pools,
            node_types=[t.node_type if t else "" for t in templates],
            table=_table(templates, unit_vectors),
        )
        self._network_loaded_at = time.monotonic()

    # ---------------------------------------------------------------- reads
    def knows(self, sku: str) -> bool:
        """Whether the cache may answer for the SKU: it holds its stock, the catalogue still
        sells it (as of the last network reload), and every node holding it is in the network
        snapshot (stock is tailed at once, a new node only at the next reload: until then the
        cache would see the units but no node to ship them from)."""
        found = self._stock.get(sku)
        if found is None or sku in self._retired_skus:
            return False
        nodes = found[0]
        highest = self._highest.get(sku)
        if highest is None or highest[0] is not nodes:  # worked out once per stock array
            highest = self._highest[sku] = (nodes, int(nodes.max()) if nodes.size else -1)
        return highest[1] < len(self._network.templates)

    def sells_for(self, channel: str) -> bool:
        """False for a channel deactivated in its configuration: the database refuses it."""
        return channel not in self._retired_channels

    def prices_by_default(self, channel: str) -> bool:
        """False for a channel sourced with bid prices, which the cache does not hold."""
        return channel not in self._inventory_aware_channels

    def shipment_limit(self, channel: str) -> int | None:
        """The most nodes the channel's orders may leave from (None: any), as of the last
        network reload."""
        return self._shipment_limits.get(channel)

    def calendar_columns(self) -> dict[str, tuple[list[int], list[str], str, str, int]]:
        """Each node's calendar columns as of the last network reload (never mutated)."""
        return self._calendar_columns

    def candidates(self, skus: Iterable[str], channel: str) -> list[CandidateNode]:
        """Same answer as ledger.stock.candidate_nodes, from memory."""
        return self._candidates(self._network, skus, channel)

    def _candidates(
        self, network: _Network, skus: Iterable[str], channel: str
    ) -> list[CandidateNode]:
        skus = list(dict.fromkeys(skus))
        units = self._units(network, skus, channel)
        return _candidate_nodes(network, units, np.flatnonzero(units.any(axis=0)), skus)

    def checkout_rows(self, skus: Iterable[str], channel: str) -> CheckoutRows:
        """The cart's SKUs at every node that can sell some of them, for the checkout: from the
        cached (SKU, channel) views, with array operations only (no object per node)."""
        network = self._network
        table = network.table
        skus = sorted(set(skus))
        views = [self._view(network, sku, channel) for sku in skus]
        if len(views) <= 1:
            by_row = (views[0].table_units() if views else _EMPTY).reshape(len(table), len(skus))
        else:  # laid out SKU by SKU (what sourcing reads line by line), seen row by row
            by_row = np.stack([view.table_units() for view in views]).T
        shippable = {sku: view.shippable for sku, view in zip(skus, views, strict=True)}
        return CheckoutRows(table, skus, shippable, by_row)

    def positioned_rows(self, found: CheckoutRows) -> np.ndarray:
        """The rows of `found.table` whose nodes have a position for some of the cart's SKUs,
        with units or not: the nodes ledger.stock.candidate_nodes lists (sourcing puts `now`
        on their clock)."""
        numbers = [self._stock.get(sku, (_EMPTY, _EMPTY))[0] for sku in found.skus]
        held = np.concatenate(numbers) if numbers else _EMPTY
        held = held[held < len(found.table.row_of)]
        rows = found.table.row_of[held]
        return np.unique(rows[rows >= 0])

    def candidates_at(self, found: CheckoutRows, picked: Iterable[int]) -> list[CandidateNode]:
        """`CandidateNode`s for these positions in `found.rows`, as `candidates` builds them."""
        table = found.table
        network = self._network
        templates = network.templates if network.table is table else None
        result = []
        for at in sorted(set(picked)):
            row = int(found.rows[at])
            column = found.units[at].tolist()
            available = {sku: n for sku, n in zip(found.skus, column, strict=True) if n > 0}
            number = int(table.numbers[row])
            template = templates[number] if templates is not None else None
            if template is None:  # the network moved on meanwhile: rebuilt from the table
                template = CandidateNode(
                    table.node_ids[row], table.node_types[row],
                    GeoPoint.model_construct(lat=float(table.lat[row]), lon=float(table.lon[row])),
                    bool(table.can_ship[row]), bool(table.can_pickup[row]), 100, {},
                )  # fmt: skip
            result.append(
                CandidateNode(
                    template.node_id, template.node_type, template.location, template.can_ship,
                    template.can_pickup, template.priority, available,
                )
            )  # fmt: skip
        return result

    def nearest_pickup_stores(
        self,
        found: CheckoutRows,
        lines: list[OrderLine],
        destination: GeoPoint,
        within_km: float | None = None,
    ) -> np.ndarray:
        """Positions in `found.rows` of the pickup stores holding the whole cart nearest to
        `destination`: shortlisted by their angle to it (see SHORTLIST_MARGIN_COS), so the
        store exact `distance_km` finds nearest, and any tied with it, is always among them.
        With `within_km`, none that is surely farther (by RADIUS_MARGIN) than that: the caller
        offers no pickup beyond it, so the nearest store within it is still among them."""
        table = found.table
        toward = _unit_vector(destination.lat, destination.lon)
        near_rows = None
        if within_km is not None and within_km * (1 + RADIUS_MARGIN) < NEAR_CELL_KM:
            # Only the pickup stores in the grid cells around the destination can be in reach.
            near_rows = table.pickup_stores_near(toward)
            if not len(near_rows):
                return _EMPTY
        need = [0] * len(found.skus)
        for line in lines:
            at = found.skus.index(line.sku)
            need[at] = max(need[at], line.quantity)
        if near_rows is not None:
            assert within_km is not None
            # A handful of stores: the same tests as below, in plain Python. (The cosines may
            # differ from the dot product's in the last bit, far inside both margins.)
            reach = cos(min(pi, within_km * (1 + RADIUS_MARGIN) / EARTH_RADIUS_KM))
            tx, ty, tz = toward
            vectors = table.vectors()
            cosines = {}
            for row in near_rows.tolist():
                x, y, z = vectors[row]
                cosine = x * tx + y * ty + z * tz
                if cosine >= reach:
                    cosines[row] = cosine
            if not cosines:
                return _EMPTY
            holding = [
                (row, cosine)
                for (row, cosine), units in zip(
                    cosines.items(), found.every_row[list(cosines)].tolist(), strict=True
                )
                if all(u >= q for u, q in zip(units, need, strict=True))
            ]
            if not holding:
                return _EMPTY
            best = max(cosine for _, cosine in holding) - SHORTLIST_MARGIN_COS
            picked = [row for row, cosine in holding if cosine >= best]
            # Their positions in found.rows: a store holding the cart is there.
            return found.rows.searchsorted(np.array(picked, dtype=np.int64))
        stores = (found.units >= np.array(need)[None, :]).all(axis=1) & table.can_pickup[found.rows]
        if not stores.any():
            return _EMPTY
        cosines = table.unit_vectors[found.rows[stores]] @ toward
        near = cosines >= cosines.max() - SHORTLIST_MARGIN_COS
        if within_km is not None:
            # The angle a great-circle distance spans; the margin dwarfs the dot product's error.
            reach = min(pi, within_km * (1 + RADIUS_MARGIN) / EARTH_RADIUS_KM)
            near &= cosines >= cos(reach)
        return np.flatnonzero(stores)[near]

    def _view(self, network: _Network, sku: str, channel: str) -> _SkuView:
        stock = self._stock.get(sku, (_EMPTY, _EMPTY))
        view = self._views.get((sku, channel))
        if view is None or view.stock is not stock or view.network is not network:
            if len(self._views) >= MAX_VIEWS:
                self._views.clear()
            units = self._units(network, [sku], channel)[0]
            view = _SkuView(stock, network, units.tolist(), units, int(units @ network.ships))
            self._views[(sku, channel)] = view
        return view

    def _units(self, network: _Network, skus: list[str], channel: str) -> np.ndarray:
        """What the channel may sell of each SKU (rows) at each active node (columns); 0 where
        it may sell nothing or the node is inactive."""
        size = len(network.templates)
        units = np.zeros((len(skus), size), dtype=np.int64)
        shares = network.shares_for(channel)
        numbered_since = len(self._node_numbers) > size  # nodes first seen after the network
        for k, sku in enumerate(skus):
            nodes, atps = self._stock.get(sku, (_EMPTY, _EMPTY))
            if numbered_since:
                known = nodes < size
                nodes, atps = nodes[known], atps[known]
            units[k, nodes] = shares.apply(atps, nodes)
        if network.inactive.size:
            units[:, network.inactive] = 0
        if shares.pool is not None:  # a share or cap could be negative; publish no less than 0
            np.maximum(units, 0, out=units)
        return units


def _table(templates: list[CandidateNode | None], unit_vectors: np.ndarray) -> NodeTable:
    active = [(t.priority, t.node_id, number, t) for number, t in enumerate(templates) if t]
    active.sort(key=lambda entry: entry[:2])
    nodes = [t for *_, t in active]
    numbers = np.array([number for _, _, number, _ in active], dtype=np.int64)
    row_of = np.full(len(templates), -1, dtype=np.int64)
    row_of[numbers] = np.arange(len(numbers))
    return NodeTable(
        numbers=numbers,
        node_ids=[t.node_id for t in nodes],
        node_types=[t.node_type for t in nodes],
        lat=np.array([t.location.lat for t in nodes], dtype=float),
        lon=np.array([t.location.lon for t in nodes], dtype=float),
        can_ship=np.array([t.can_ship for t in nodes], dtype=bool),
        can_pickup=np.array([t.can_pickup for t in nodes], dtype=bool),
        unit_vectors=unit_vectors[numbers].reshape(-1, 3),
        row_of=row_of,
    )


def _arrays(nodes: list[int], units: list[int]) -> SkuStock:
    return np.array(nodes, dtype=np.int64), np.array(units, dtype=np.int64)


def _candidate_nodes(
    network: _Network, units: np.ndarray, numbers: np.ndarray, skus: list[str]
) -> list[CandidateNode]:
    """`CandidateNode`s for these node numbers, in node-id order, each with the SKUs it can
    sell (units > 0), as `candidates` has always built them."""
    result = []
    for number in sorted(numbers.tolist(), key=network.node_ids.__getitem__):
        template = network.templates[number]
        assert template is not None  # `units` is 0 at inactive nodes
        column = units[:, number].tolist()
        result.append(
            CandidateNode(
                template.node_id, template.node_type, template.location, template.can_ship,
                template.can_pickup, template.priority,
                {sku: n for sku, n in zip(skus, column, strict=True) if n > 0},
            )
        )  # fmt: skip
    return result


_TOUCHED_COLUMNS = (StockMovement.node_id, StockMovement.sku)
_POSITION_COLUMNS = select(
    StockPosition.node_id,
    StockPosition.sku,
    StockPosition.on_hand,
    StockPosition.reserved,
    StockPosition.held,
    StockPosition.safety_stock,
)


def _candidate(node: Node) -> CandidateNode:
    return CandidateNode(
        node_id=node.node_id,
        node_type=NodeType(node.node_type),
        location=GeoPoint.model_construct(lat=node.lat, lon=node.lon),
        can_ship=node.can_ship,
        can_pickup=node.can_pickup,
        priority=node.priority,
        available={},
    )
