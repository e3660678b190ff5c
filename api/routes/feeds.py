"""Stock feeds pushed by ERP / WMS / store systems, channel pools, and reconciliation.

A feed with a bad line applies nothing and answers 422 naming every refused line (the default,
`mode=all_or_nothing`), or with `mode=partial` applies the good lines and reports the refused ones.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from api.deps import SessionDep
from api.errors import ApiError
from api.security import require
from ledger import feeds
from ledger.audit import reconcile
from ledger.db import transaction
from ledger.tables import ChannelPool, Node, Sku
from security.roles import Role

router = APIRouter(prefix="/v1", tags=["feeds"], dependencies=[Depends(require(Role.OPS))])
SOURCE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeedMode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    PARTIAL = "partial"


class SnapshotPosition(Strict):
    sku: str = Field(min_length=1, max_length=64)
    on_hand: int = Field(ge=0, le=1_000_000_000)


class Snapshot(Strict):
    event_id: str = Field(min_length=1, max_length=200)
    node_id: str = Field(min_length=1, max_length=64)
    as_of: datetime
    mode: FeedMode = FeedMode.ALL_OR_NOTHING
    positions: list[SnapshotPosition] = Field(max_length=500_000)


class Delta(Strict):
    event_id: str = Field(min_length=1, max_length=200)
    node_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    delta: int = Field(ge=-1_000_000, le=1_000_000)
    as_of: datetime


class Deltas(Strict):
    mode: FeedMode = FeedMode.ALL_OR_NOTHING
    deltas: list[Delta] = Field(min_length=1, max_length=100_000)


class RefusedLine(BaseModel):
    line: int
    reason: str


class FeedResult(BaseModel):
    applied: int
    replayed: int = 0
    stale: int = 0
    refused: list[RefusedLine] = []


def _known(session: SessionDep, model: type, key: str, values: set[str]) -> set[str]:
    column = col(getattr(model, key))
    known: set[str] = set()
    values_list = sorted(values)
    for start in range(0, len(values_list), 5000):  # stay under SQLite's variable limit
        chunk = values_list[start : start + 5000]
        known.update(session.exec(select(column).where(column.in_(chunk))).all())
    return known


def _refuse_or_keep(refused: list[RefusedLine], mode: FeedMode, what: str) -> None:
    if refused and mode == FeedMode.ALL_OR_NOTHING:
        listed = "; ".join(f"{what}[{r.line}]: {r.reason}" for r in refused[:50])
        more = f" (and {len(refused) - 50} more)" if len(refused) > 50 else ""
        raise ApiError(422, "feed_refused", f"nothing applied: {listed}{more}")


@router.post("/feeds/{source}/snapshots", response_model=FeedResult)
def push_snapshot(source: str, snapshot: Snapshot, session: SessionDep) -> FeedResult:
    """Absolute on hand for every SKU at one node as of a time; SKUs it omits go to 0."""
    if session.get(Node, snapshot.node_id) is None:
        raise ApiError(422, "unknown_reference", f"node_id: unknown {snapshot.node_id}")
    known = _known(session, Sku, "sku", {p.sku for p in snapshot.positions})
    refused, seen, on_hand = [], set(), {}
    for i, p in enumerate(snapshot.positions):
        if p.sku not in known:
            refused.append(RefusedLine(line=i, reason=f"unknown SKU {p.sku}"))
        elif p.sku in seen:
            refused.append(RefusedLine(line=i, reason=f"SKU {p.sku} appears twice"))
        else:
            on_hand[p.sku] = p.on_hand
        seen.add(p.sku)
    _refuse_or_keep(refused, snapshot.mode, "positions")
    with transaction(session.get_bind()) as tx:  # type: ignore[arg-type]
        outcome = feeds.apply_snapshot(
            tx, source, snapshot.event_id, snapshot.node_id, snapshot.as_of, on_hand
        )
    return FeedResult(
        applied=0 if outcome.replayed else outcome.changed + outcome.unchanged + outcome.created,
        replayed=int(outcome.replayed),
        stale=outcome.stale_skus,
        refused=refused,
    )


@router.post("/feeds/{source}/deltas", response_model=FeedResult)
def push_deltas(source: str, batch: Deltas, session: SessionDep) -> FeedResult:
    """Adjust on hand by a quantity, each with the source's event id and as-of time."""
    nodes = _known(session, Node, "node_id", {d.node_id for d in batch.deltas})
    skus = _known(session, Sku, "sku", {d.sku for d in batch.deltas})
    refused, good = [], []
    for i, d in enumerate(batch.deltas):
        if d.node_id not in nodes:
            refused.append(RefusedLine(line=i, reason=f"unknown node {d.node_id}"))
        elif d.sku not in skus:
            refused.append(RefusedLine(line=i, reason=f"unknown SKU {d.sku}"))
        else:
            good.append((i, feeds.DeltaLine(d.event_id, d.node_id, d.sku, d.delta, d.as_of)))
    _refuse_or_keep(refused, batch.mode, "deltas")
    with transaction(session.get_bind()) as tx:  # type: ignore[arg-type]
        outcome = feeds.apply_deltas(tx, source, [line for _, line in good])
        below_zero = set(outcome.refused)
        refused += [
            RefusedLine(line=i, reason=f"would take on hand of {ln.sku} at {ln.node_id} below 0")
            for i, ln in good
            if ln.event_id in below_zero
        ]
        # all or nothing: raising here rolls the whole batch back
        _refuse_or_keep(refused, batch.mode, "deltas")
    return FeedResult(
        applied=outcome.applied,
        replayed=len(outcome.replayed),
        stale=len(outcome.stale),
        refused=sorted(refused, key=lambda r: r.line),
    )


class ChannelPoolBody(Strict):
    node_types: list[str] | None = None
    node_ids: list[str] | None = None
    share_by_node_type: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    cap_by_node_type: dict[str, Annotated[int, Field(ge=0, le=10**9)]] = Field(default_factory=dict)


@router.put("/channels/{channel}/pool", response_model=ChannelPoolBody)
def set_channel_pool(channel: str, body: ChannelPoolBody, session: SessionDep) -> ChannelPoolBody:
    """Which nodes a channel sells from, and a share (0..1) or cap per node of a node type."""
    with transaction(session.get_bind()) as tx:  # type: ignore[arg-type]
        row = tx.get(ChannelPool, channel) or ChannelPool(channel=channel)
        for key, value in body.model_dump().items():
            setattr(row, key, value)
        tx.add(row)
    return body


class Reconciliation(BaseModel):
    balanced: bool
    drifts: list[str]


@router.get("/inventory-reconciliation", response_model=Reconciliation)
def reconciliation(session: SessionDep) -> Reconciliation:
    """Rebuild every position from its ledger entries and report any drift."""
    drifts = [str(d) for d in reconcile(session)]
    return Reconciliation(balanced=not drifts, drifts=drifts)
