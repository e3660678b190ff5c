"""Availability math: the one place that says how much of a position can be sold, and how much of
it a channel may see. The API, the checkout check and sourcing all call these functions; the
ledger's conditional UPDATEs enforce the same `available_to_promise` formula in SQL."""

from math import floor
from typing import Protocol

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
