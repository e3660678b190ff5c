"""Inventory housekeeping, run on a Temporal Schedule: expire checkout holds, pull stock feeds
from systems that cannot push, and publish out-of-stock / back-in-stock events."""

from sqlalchemy import Engine
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
from services import housekeeping
from services.feeds import DeltaLine, apply_pulled_page


class HousekeepingActivities:
    def __init__(self, engine: Engine, erp: ErpFeedConnector) -> None:
        self._engine = engine
        self._erp = erp

    @activity.defn(name=ActivityName.EXPIRE_HOLDS)
    def expire_holds(self, request: ExpireHoldsInput) -> ExpireHoldsResult:
        expired = housekeeping.expire_due_holds(self._engine, request.batch)
        return ExpireHoldsResult(expired=expired)

    @activity.defn(name=ActivityName.PUBLISH_AVAILABILITY_EVENTS)
    def publish_availability_events(
        self, request: PublishAvailabilityEventsInput
    ) -> PublishAvailabilityEventsResult:
        events = housekeeping.publish_availability_events(self._engine, request.max_movements)
        return PublishAvailabilityEventsResult(events=events)

    @activity.defn(name=ActivityName.LIST_FEED_SOURCES)
    def list_feed_sources(self, _: FeedSourcesInput) -> FeedSourcesResult:
        sources = housekeeping.enabled_feed_sources(self._engine)
        return FeedSourcesResult(
            sources=[FeedSourceRef(source=s.source, url=s.url, cursor=s.cursor) for s in sources]
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
