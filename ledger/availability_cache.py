"""An in-process copy of every position's counters for the checkout hot path.

Reads on the checkout path must not cost a database round trip per request. The cache loads all
positions once, then tails the append-only stock movements every `refresh_seconds` and re-reads
only the positions they touched, so it trails the ledger by about that interval. It is advisory:
holds and reservations are always taken by the database's conditional UPDATE, which is what
prevents overselling.
"""

import threading
import time

from sqlalchemy import Engine, func, select, tuple_
from sqlmodel import col

from domain.availability import ChannelPoolRule, atp, channel_share
from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from ledger.availability import pool_rule
from ledger.tables import ChannelPool, Node, StockMovement, StockPosition

Counters = tuple[int, int, int, int]  # on hand, reserved, held, safety stock
NETWORK_REFRESH_SECONDS = 5.0


class AvailabilityCache:
    def __init__(self, engine: Engine, refresh_seconds: float = 0.05) -> None:
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._positions: dict[str, dict[str, Counters]] = {}
        self._templates: dict[str, CandidateNode] = {}
        self._pools: dict[str, ChannelPoolRule] = {}
        self._watermark = 0
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
            self._watermark = c.execute(select(func.max(StockMovement.id))).scalar_one() or 0
            positions: dict[str, dict[str, Counters]] = {}
            for node_id, sku, *counters in c.execute(_POSITION_COLUMNS):
                positions.setdefault(sku, {})[node_id] = tuple(counters)  # type: ignore[assignment]
        self._positions = positions
        self._load_network()
        self.ready = True

    def refresh(self) -> None:
        with self._engine.connect() as c:
            latest = c.execute(select(func.max(StockMovement.id))).scalar_one() or 0
            if latest > self._watermark:
                touched = c.execute(
                    select(StockMovement.node_id, StockMovement.sku)
                    .where(col(StockMovement.id) > self._watermark)
                    .where(col(StockMovement.id) <= latest)
                    .distinct()
                ).all()
                self._reread(c, [(n, s) for n, s in touched])
                self._watermark = latest
        if time.monotonic() - self._network_loaded_at > NETWORK_REFRESH_SECONDS:
            self._load_network()

    def _reread(self, connection, pairs: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
        for start in range(0, len(pairs), 500):
            chunk = pairs[start : start + 500]
            rows = connection.execute(
                _POSITION_COLUMNS.where(
                    tuple_(col(StockPosition.node_id), col(StockPosition.sku)).in_(chunk)
                )
            )
            updated: dict[str, dict[str, Counters]] = {}
            for node_id, sku, *counters in rows:
                if sku not in updated:
                    updated[sku] = dict(self._positions.get(sku, {}))  # copy-on-write
                updated[sku][node_id] = tuple(counters)  # type: ignore[assignment]
            self._positions.update(updated)

    def _load_network(self) -> None:
        with self._engine.connect() as c:
            nodes = {row.node_id: row for row in c.execute(select(Node)).all()}
            pools = {row.channel: pool_rule(row) for row in c.execute(select(ChannelPool)).all()}
        self._templates = {
            node_id: _candidate(node) for node_id, node in nodes.items() if node.active
        }
        self._pools = pools
        self._network_loaded_at = time.monotonic()

    # ---------------------------------------------------------------- reads
    def knows(self, sku: str) -> bool:
        return sku in self._positions

    def candidates(self, skus: set[str], channel: str) -> list[CandidateNode]:
        """Same answer as ledger.stock.candidate_nodes, from memory."""
        pool = self._pools.get(channel)
        templates = self._templates
        candidates: dict[str, CandidateNode] = {}
        for sku in skus:
            for node_id, counters in self._positions.get(sku, {}).items():
                template = templates.get(node_id)
                if template is None:  # inactive or unknown node
                    continue
                units = channel_share(atp(*counters), node_id, template.node_type, pool)
                if units <= 0:
                    continue
                candidate = candidates.get(node_id)
                if candidate is None:
                    candidate = candidates[node_id] = CandidateNode(
                        node_id, template.node_type, template.location, template.can_ship,
                        template.can_pickup, template.priority, {},
                    )  # fmt: skip
                candidate.available[sku] = units
        return sorted(candidates.values(), key=lambda c: c.node_id)


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
