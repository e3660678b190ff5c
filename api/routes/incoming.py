"""Incoming stock pushed by ERP / WMS systems: purchase order and transfer lines, and the
receipts that turn them into stock on hand. The rules are services.incoming'; this module
parses, authorizes and maps (a refused batch is services.feeds.FeedRefused, a 422)."""

from fastapi import APIRouter, Depends

from api.deps import EngineDep
from api.routes.feeds import _result
from api.schemas import FeedResult, IncomingFeed, Receipts, SourcePath
from api.security import require
from security.roles import Role
from services import incoming

router = APIRouter(prefix="/v1", tags=["feeds"], dependencies=[Depends(require(Role.OPS))])


@router.post("/feeds/{source}/incoming", response_model=FeedResult)
def push_incoming(source: SourcePath, feed: IncomingFeed, engine: EngineDep) -> FeedResult:
    """Create, change or cancel purchase order and transfer lines, each with the source's
    event id. Their open units are incoming at the node, by expected date; never sold as stock
    on hand until received."""
    return _result(incoming.push_incoming(engine, source, feed.lines, feed.mode))


@router.post("/feeds/{source}/receipts", response_model=FeedResult)
def push_receipts(source: SourcePath, batch: Receipts, engine: EngineDep) -> FeedResult:
    """Goods received against incoming lines, in full or in part: incoming goes down and on
    hand up in one transaction. Receiving more than a line has open is refused naming it."""
    return _result(incoming.push_receipts(engine, source, batch.receipts, batch.mode))
