"""Stock feeds pushed by ERP / WMS / store systems, channel pools, and reconciliation.

A feed with a bad line applies nothing and answers 422 naming every refused line (the default,
`mode=all_or_nothing`), or with `mode=partial` applies the good lines and reports the refused ones.
The rules are services.feeds'; this module parses, authorizes and maps.
"""

from fastapi import APIRouter, Depends

from api.deps import EngineDep, SessionDep
from api.errors import ApiError
from api.schemas import (
    ChannelPath,
    ChannelPoolBody,
    Deltas,
    FeedResult,
    Reconciliation,
    RefusedLine,
    Snapshot,
    SourcePath,
)
from api.security import require
from domain.availability import ChannelPoolRule
from domain.errors import UnknownReference
from ledger.audit import reconcile
from security.roles import Role
from services import feeds
from services.feeds import FeedOutcome

router = APIRouter(prefix="/v1", tags=["feeds"], dependencies=[Depends(require(Role.OPS))])


def _result(outcome: FeedOutcome) -> FeedResult:
    return FeedResult(
        applied=outcome.applied,
        replayed=outcome.replayed,
        stale=outcome.stale,
        refused=[RefusedLine(line=r.line, reason=r.reason) for r in outcome.refused],
    )


@router.post("/feeds/{source}/snapshots", response_model=FeedResult)
def push_snapshot(source: SourcePath, snapshot: Snapshot, engine: EngineDep) -> FeedResult:
    """Absolute on hand for every SKU at one node as of a time; SKUs it omits go to 0."""
    try:
        outcome = feeds.push_snapshot(
            engine,
            source,
            snapshot.event_id,
            snapshot.node_id,
            snapshot.as_of,
            snapshot.positions,
            snapshot.mode,
        )
    except UnknownReference as exc:
        # This refusal has always been answered without the `field` other unknown references
        # carry: kept, so the answer does not change.
        raise ApiError(422, exc.code, str(exc)) from exc
    return _result(outcome)


@router.post("/feeds/{source}/deltas", response_model=FeedResult)
def push_deltas(source: SourcePath, batch: Deltas, engine: EngineDep) -> FeedResult:
    """Adjust on hand by a quantity, each with the source's event id and as-of time."""
    return _result(feeds.push_deltas(engine, source, batch.deltas, batch.mode))


@router.put("/channels/{channel}/pool", response_model=ChannelPoolBody)
def set_channel_pool(
    channel: ChannelPath, body: ChannelPoolBody, engine: EngineDep
) -> ChannelPoolBody:
    """Which nodes a channel sells from, and a share (0..1) or cap per node of a node type."""
    feeds.set_channel_pool(engine, ChannelPoolRule(channel=channel, **body.model_dump()))
    return body


@router.get("/inventory-reconciliation", response_model=Reconciliation)
def reconciliation(session: SessionDep) -> Reconciliation:
    """Rebuild every position from its ledger entries and report any drift."""
    drifts = [str(d) for d in reconcile(session)]
    return Reconciliation(balanced=not drifts, drifts=drifts)
