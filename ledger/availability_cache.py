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
(`checkout_view`).
"""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from math import cos, radians, sin

import numpy as np
from sqlalchemy import Engine, select, tuple_
from sqlmodel import col

from domain.availability import ChannelPoolRule, ChannelShares, atp
from domain.geo import GeoPoint
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

_EMPTY = np.zeros(0, dtype=np.int64)
SkuStock = tuple[np.ndarray, np.ndarray]  # node numbers, ATP at each
MAX_VIEWS = 200_000  # (SKU, channel) views kept; past that they are rebuilt as needed
# The candidates that can change the checkout's answer, among those given (sourcing's rule).
PickRelevant = Callable[[list[OrderLine], GeoPoint, list[CandidateNode]], list[CandidateNode]]


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
    shares: dict[str | None, ChannelShares] = field(default_factory=dict)

    def shares_for(self, channel: str) -> ChannelShares:
        pool = self.pools.get(channel)
        key = pool.channel if pool is not None else None
        shares = self.shares.get(key)
        if shares is None:
            shares = self.shares[key] = ChannelShares(self.node_ids, self.node_types, pool)
        return shares


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
        self._calendar_columns: dict[str, tuple[list[int], list[str], str, str, int]] = {}
        self._views: dict[tuple[str, str], _SkuView] = {}
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
        self._network = _Network(
            templates=templates,
            node_ids=node_ids,
            active=active,
            can_ship=can_ship,
            can_pickup=can_pickup,
            inactive=np.flatnonzero(~active),
            unit_vectors=np.array(
                [
                    _unit_vector(t.location.lat, t.location.lon) if t else (0.0, 0.0, 0.0)
                    for t in templates
                ],
                dtype=np.float64,
            ).reshape(-1, 3),
            roles=np.array([can_ship, can_pickup], dtype=bool).reshape(2, -1),
            ships=can_ship.astype(np.int64),
            pools=pools,
            node_types=[t.node_type if t else "" for t in templates],
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
        return not nodes.size or int(nodes.max()) < len(self._network.templates)

    def sells_for(self, channel: str) -> bool:
        """False for a channel deactivated in its configuration: the database refuses it."""
        return channel not in self._retired_channels

    def prices_by_default(self, channel: str) -> bool:
        """False for a channel sourced with bid prices, which the cache does not hold."""
        return channel not in self._inventory_aware_channels

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

    def checkout_view(
        self,
        lines: list[OrderLine],
        destination: GeoPoint,
        channel: str,
        pick_relevant: PickRelevant,
    ) -> tuple[list[CandidateNode], dict[str, int]]:
        """For `sourcing.checkout.check_cart`: the same candidates as
        `pick_relevant(lines, destination, self.candidates(skus, channel))`, and
        `shippable_totals` over all of `self.candidates(...)`, without building a candidate per
        node: the nodes holding the whole cart are found with array operations on the cached
        (SKU, channel) views, the nearest are shortlisted by their angle to the destination, and
        `pick_relevant` decides among those by exact distance. It is sourcing's rule
        (`sourcing.checkout.relevant_candidates`, passed in by services.checkout): the ledger
        finds the nodes, sourcing decides which of them matter."""
        network = self._network
        views = {ln.sku: self._view(network, ln.sku, channel) for ln in lines}
        totals = {sku: view.shippable for sku, view in views.items()}
        whole = views[lines[0].sku].holding(lines[0].quantity)
        for ln in lines[1:]:
            whole = whole & views[ln.sku].holding(ln.quantity)
        # Row 0: shipping nodes holding the whole cart; row 1: pickup stores holding it. Each
        # holds the cosine of the node's angle to the destination (larger is nearer), -3 if not
        # in the group.
        cosines = network.unit_vectors @ _unit_vector(destination.lat, destination.lon)
        groups = np.where(network.roles & whole, cosines, -3.0)
        # `initial`: a network snapshot older than the stock (no node yet) has no column at all.
        best_shipping, best_pickup = groups.max(axis=1, initial=-3.0).tolist()
        if best_shipping < -2:  # no single shipping node: a split may be needed, see everyone
            return self._candidates(network, views, channel), totals
        if best_pickup < -2:  # no store holds it: the threshold makes that row select nothing
            best_pickup = 2.0
        threshold = np.array([[best_shipping], [best_pickup]]) - SHORTLIST_MARGIN_COS
        shortlist = np.flatnonzero((groups >= threshold).any(axis=0)).tolist()
        nearby = []
        for number in sorted(shortlist, key=network.node_ids.__getitem__):
            template = network.templates[number]
            assert template is not None  # inactive nodes hold nothing
            nearby.append(
                CandidateNode(
                    template.node_id, template.node_type, template.location, template.can_ship,
                    template.can_pickup, template.priority,
                    {sku: v.units[number] for sku, v in views.items() if v.units[number] > 0},
                )
            )  # fmt: skip
        return pick_relevant(lines, destination, nearby), totals

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
