"""Inventory housekeeping, run on a Temporal Schedule: expire checkout holds, pull stock feeds
from systems that cannot push, and publish out-of-stock / back-in-stock events."""

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.erp import ErpFeedConnector
from connectors.errors import PermanentConnectorError
from contracts.activities import (
    ApplyPulledDeltasInput,
    ApplyPulledDeltasResult,
    ExpireHoldsInput,
    ExpireHoldsResult,
    FeedSourceRef,
    FeedSourcesInput,
    FeedSourcesResult,
    FetchDeltasInput,
    FetchDeltasResult,
    PublishAvailabilityEventsInput,
    PublishAvailabilityEventsResult,
    PulledDeltaPage,
)
from contracts.names import ActivityName
from ledger import holds
from ledger.db import transaction
from ledger.tables import FeedSource
from ledger.thresholds import publish_threshold_events
from services.feeds import DeltaLine, apply_pulled_page


class HousekeepingActivities:
    def __init__(self, engine: Engine, erp: ErpFeedConnector) -> None:
        self._engine = engine
        self._erp = erp

    @activity.defn(name=ActivityName.EXPIRE_HOLDS)
    def expire_holds(self, request: ExpireHoldsInput) -> ExpireHoldsResult:
        expired = 0
        while True:
            with transaction(self._engine) as session:
                batch = holds.expire_holds(session, datetime.now(UTC), request.batch)
            expired += len(batch)
            if len(batch) < request.batch:
                return ExpireHoldsResult(expired=expired)

    @activity.defn(name=ActivityName.PUBLISH_AVAILABILITY_EVENTS)
    def publish_availability_events(
        self, request: PublishAvailabilityEventsInput
    ) -> PublishAvailabilityEventsResult:
        with transaction(self._engine) as session:
            events = publish_threshold_events(session, request.max_movements)
        return PublishAvailabilityEventsResult(events=len(events))

    @activity.defn(name=ActivityName.LIST_FEED_SOURCES)
    def list_feed_sources(self, _: FeedSourcesInput) -> FeedSourcesResult:
        with Session(self._engine) as session:
            rows = session.exec(select(FeedSource).where(col(FeedSource.enabled).is_(True))).all()
        return FeedSourcesResult(
            sources=[FeedSourceRef(source=r.source, url=r.url, cursor=r.cursor) for r in rows]
        )

    @activity.defn(name=ActivityName.FETCH_STOCK_DELTAS)
    async def fetch_stock_deltas(self, request: FetchDeltasInput) -> FetchDeltasResult:
        try:
            page = await self._erp.fetch_deltas(request.source.url, request.source.cursor)
        except PermanentConnectorError as exc:
            raise ApplicationError(str(exc), type="FeedRefused", non_retryable=True) from exc
        return FetchDeltasResult(page=PulledDeltaPage.model_validate(page.model_dump()))

    @activity.defn(name=ActivityName.APPLY_PULLED_DELTAS)
    def apply_pulled_deltas(self, request: ApplyPulledDeltasInput) -> ApplyPulledDeltasResult:
        """Deltas and the new cursor commit together; a retried page finds the cursor moved."""
        outcome = apply_pulled_page(
            self._engine,
            request.source,
            request.cursor,
            request.page.next_cursor,
            [
                DeltaLine(d.event_id, d.node_id, d.sku, d.delta, d.as_of)
                for d in request.page.deltas
            ],
        )
        return ApplyPulledDeltasResult(
            applied=outcome.applied, already_applied=outcome.already_applied
        )
