"""Availability math: the one place that says how much of a position can be sold, and how much of
it a channel may see. The API, the checkout check and sourcing all call these functions; the
ledger's conditional UPDATEs enforce the same `available_to_promise` formula in SQL."""

from collections.abc import Sequence
from math import floor
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field


class PositionFigures(BaseModel):
    node_id: str
    node_type: str
    sku: str
    on_hand: int
    reserved: int
    held: int
    safety_stock: int


class ChannelPoolRule(BaseModel):
    """A channel's view of the network. No rule: every active node, all of its stock."""

    channel: str
    node_types: list[str] | None = None
    node_ids: list[str] | None = None
    share_by_node_type: dict[str, float] = Field(default_factory=dict)  # 0..1 of a node's ATP
    cap_by_node_type: dict[str, int] = Field(default_factory=dict)  # at most N units per node


class Counters(Protocol):
    on_hand: int
    reserved: int
    held: int
    safety_stock: int


def atp(on_hand: int, reserved: int, held: int, safety_stock: int) -> int:
    """On hand less reservations, holds and safety stock; never negative in what is published."""
    return max(0, on_hand - reserved - held - safety_stock)


def available_to_promise(p: Counters) -> int:
    return atp(p.on_hand, p.reserved, p.held, p.safety_stock)


def channel_share(units: int, node_id: str, node_type: str, pool: ChannelPoolRule | None) -> int:
    """How much of a node's ATP a channel may sell."""
    if pool is None:
        return units
    if pool.node_types is not None and node_type not in pool.node_types:
        return 0
    if pool.node_ids is not None and node_id not in pool.node_ids:
        return 0
    if node_type in pool.share_by_node_type:
        units = floor(units * pool.share_by_node_type[node_type])
    if node_type in pool.cap_by_node_type:
        units = min(units, pool.cap_by_node_type[node_type])
    return units


class ChannelShares:
    """`channel_share` for many nodes at once, over numpy arrays (the checkout hot path).

    Built once per pool and node list (`node_ids[i]` is of type `node_types[i]`); `apply` answers
    what `channel_share` answers for each element. tests/test_checkout_fast_path.py proves the two
    equal element by element, so this is the same rule, not a second one."""

    def __init__(
        self, node_ids: Sequence[str], node_types: Sequence[str], pool: ChannelPoolRule | None
    ) -> None:
        self.pool = pool
        if pool is None:
            return
        self._visible = np.array(
            [
                (pool.node_types is None or t in pool.node_types)
                and (pool.node_ids is None or n in pool.node_ids)
                for n, t in zip(node_ids, node_types, strict=True)
            ],
            dtype=bool,
        )
        shares = [pool.share_by_node_type.get(t) for t in node_types]
        self._has_share = np.array([s is not None for s in shares], dtype=bool)
        self._share = np.array([1.0 if s is None else s for s in shares], dtype=np.float64)
        caps = [pool.cap_by_node_type.get(t) for t in node_types]
        self._has_cap = np.array([c is not None for c in caps], dtype=bool)
        self._cap = np.array([0 if c is None else c for c in caps], dtype=np.int64)

    def apply(self, units: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """`channel_share(units[k], node nodes[k], ...)` for every k; `nodes` index the node list."""
        pool = self.pool
        if pool is None:
            return units
        out = units
        if pool.share_by_node_type:
            shared = np.floor(out * self._share[nodes]).astype(np.int64)
            out = np.where(self._has_share[nodes], shared, out)
        if pool.cap_by_node_type:
            out = np.where(self._has_cap[nodes], np.minimum(out, self._cap[nodes]), out)
        return np.where(self._visible[nodes], out, 0)


def visible_to_channel(p: PositionFigures, pool: ChannelPoolRule | None) -> int:
    return channel_share(available_to_promise(p), p.node_id, p.node_type, pool)


class SkuAvailability(BaseModel):
    sku: str
    total: int
    by_node: dict[str, int]


def channel_availability(
    positions: list[PositionFigures], pool: ChannelPoolRule | None
) -> dict[str, SkuAvailability]:
    """Per SKU: what the channel can sell at each node and in total."""
    result: dict[str, SkuAvailability] = {}
    for p in positions:
        entry = result.setdefault(p.sku, SkuAvailability(sku=p.sku, total=0, by_node={}))
        units = visible_to_channel(p, pool)
        entry.by_node[p.node_id] = units
        entry.total += units
    return result
