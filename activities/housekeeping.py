"""Inventory housekeeping, run on a Temporal Schedule: expire checkout holds, pull stock feeds
and PIM catalogues from systems that cannot push, and publish out-of-stock / back-in-stock
events."""

import time

from sqlalchemy import Engine
from temporalio import activity

from connectors.erp import ErpFeedConnector
from connectors.errors import PermanentConnectorError, TransientConnectorError
from connectors.pim import PimConnector
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
from services import catalogue, housekeeping
from services.feeds import DeltaLine, apply_pulled_page

# The catalogue pulls' share of LIST_FEED_SOURCES' two minutes: no new page is asked for after
# this (a page under way may still take the connector's timeout and retries), so a slow PIM
# delays the stock feeds a little and never times the activity out.
CATALOGUE_PULL_SECONDS = 45.0
PIM_TIMEOUT_SECONDS = 10.0


# An empty page ends the workflow's loop over the source's pages, and applying it keeps the
# cursor where it is.
_NOTHING_THIS_RUN = FetchDeltasResult(page=PulledDeltaPage(deltas=[], next_cursor=None))


def _last_attempt() -> bool:
    info = activity.info()
    attempts = info.retry_policy.maximum_attempts if info.retry_policy else 0
    return attempts > 0 and info.attempt >= attempts


class HousekeepingActivities:
    def __init__(
        self, engine: Engine, erp: ErpFeedConnector, pim: PimConnector | None = None
    ) -> None:
        self._engine = engine
        self._erp = erp
        self._pim = pim or PimConnector(timeout_seconds=PIM_TIMEOUT_SECONDS)

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
        """The stock sources to pull deltas from, after pulling the PIMs' catalogues. The
        catalogue pull lives here rather than in an activity of its own so the housekeeping
        workflow, and the histories it has recorded, stay as they are."""
        self._pull_catalogues()
        sources = housekeeping.enabled_feed_sources(self._engine)
        return FeedSourcesResult(
            sources=[FeedSourceRef(source=s.source, url=s.url, cursor=s.cursor) for s in sources]
        )

    def _pull_catalogues(self) -> None:
        """Each PIM from its cursor. Neither a PIM that cannot be reached nor a page it sent
        with a refused item (services.catalogue logs why and keeps the cursor on that page)
        stops the others or the rest of the housekeeping: the next run tries again."""
        deadline = time.monotonic() + CATALOGUE_PULL_SECONDS
        for source in catalogue.catalogue_sources(self._engine):
            if time.monotonic() > deadline:
                break
            try:
                pull = catalogue.pull_catalogue(
                    self._engine, source.source, self._pim.fetch_page, deadline=deadline
                )
            except Exception as exc:  # one PIM must never stop the stock pulls listed with it
                activity.logger.warning("catalogue %s not pulled: %s", source.source, exc)
                continue
            if pull.changed:
                activity.logger.info(
                    "catalogue %s: %d created, %d updated",
                    source.source,
                    len(pull.created),
                    len(pull.updated),
                )

    @activity.defn(name=ActivityName.FETCH_STOCK_DELTAS)
    async def fetch_stock_deltas(self, request: FetchDeltasInput) -> FetchDeltasResult:
        """A page from the source's cursor. A source that refuses us (an expired credential, a
        wrong URL), or is still unreachable on the last attempt, is skipped this run with an
        empty page, as one PIM is in _pull_catalogues: the other sources and the rest of the
        housekeeping still run, and the next run asks again from the same cursor."""
        source = request.source
        try:
            page = await self._erp.fetch_deltas(source.url, source.cursor)
        except PermanentConnectorError as exc:
            activity.logger.warning("feed %s skipped this run, refused: %s", source.source, exc)
            return _NOTHING_THIS_RUN
        except TransientConnectorError as exc:
            if not _last_attempt():
                raise  # Temporal retries it
            activity.logger.warning("feed %s skipped this run, unreachable: %s", source.source, exc)
            return _NOTHING_THIS_RUN
        return FetchDeltasResult(page=PulledDeltaPage.model_validate(page.model_dump()))

    @activity.defn(name=ActivityName.APPLY_PULLED_DELTAS)
    def apply_pulled_deltas(self, request: ApplyPulledDeltasInput) -> ApplyPulledDeltasResult:
        """Deltas, incoming lines and the new cursor commit together; a retried page finds the
        cursor moved. The page's refused lines are logged by services.feeds and never fail the
        run."""
        outcome = apply_pulled_page(
            self._engine,
            request.source,
            request.cursor,
            request.page.next_cursor,
            [
                DeltaLine(d.event_id, d.node_id, d.sku, d.delta, d.as_of)
                for d in request.page.deltas
            ],
            request.page.incoming,
        )
        return ApplyPulledDeltasResult(
            applied=outcome.applied,
            already_applied=outcome.already_applied,
            incoming_applied=outcome.incoming_applied,
        )
