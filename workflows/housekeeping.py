"""Inventory and network housekeeping, started by a Temporal Schedule every few seconds: expire
holds, pull feeds, publish availability events, degrade nodes that keep failing, and retry the
backordered orders whose stock has arrived (by those feeds, a push feed, a receipt, a released
reservation or hold since the last run)."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.activities import (
        ApplyPulledDeltasInput,
        ApplyPulledDeltasResult,
        DegradeUnhealthyNodesInput,
        DegradeUnhealthyNodesResult,
        ExpireHoldsInput,
        ExpireHoldsResult,
        FeedSourcesInput,
        FeedSourcesResult,
        FetchDeltasInput,
        FetchDeltasResult,
        PublishAvailabilityEventsInput,
        PublishAvailabilityEventsResult,
        SweepBackordersInput,
        SweepBackordersResult,
    )
    from contracts.housekeeping import HousekeepingInput, HousekeepingResult
    from contracts.names import ActivityName, WorkflowName
    from contracts.patches import Patch

OPTIONS = {
    "start_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=10)),
}
MAX_PAGES_PER_SOURCE = 20  # bounded work per run; the next run carries on from the cursor


@workflow.defn(name=WorkflowName.HOUSEKEEPING)
class InventoryHousekeepingWorkflow:
    @workflow.run
    async def run(self, _: HousekeepingInput) -> HousekeepingResult:
        expired: ExpireHoldsResult = await workflow.execute_activity(
            ActivityName.EXPIRE_HOLDS, ExpireHoldsInput(), result_type=ExpireHoldsResult, **OPTIONS
        )
        pulled = await self._pull_feeds()
        events: PublishAvailabilityEventsResult = await workflow.execute_activity(
            ActivityName.PUBLISH_AVAILABILITY_EVENTS,
            PublishAvailabilityEventsInput(),
            result_type=PublishAvailabilityEventsResult,
            **OPTIONS,
        )
        health: DegradeUnhealthyNodesResult = await workflow.execute_activity(
            ActivityName.DEGRADE_UNHEALTHY_NODES,
            DegradeUnhealthyNodesInput(),
            result_type=DegradeUnhealthyNodesResult,
            **OPTIONS,
        )
        retried: list[str] = []
        # Last, after the holds expired and the feeds were pulled: what they gave back counts.
        if workflow.patched(Patch.HOUSEKEEPING_BACKORDER_SWEEP):
            swept: SweepBackordersResult = await workflow.execute_activity(
                ActivityName.SWEEP_BACKORDERS,
                SweepBackordersInput(),
                result_type=SweepBackordersResult,
                **OPTIONS,
            )
            retried = [r.order_id for r in swept.retried if r.accepted]
        return HousekeepingResult(
            holds_expired=expired.expired,
            deltas_pulled=pulled,
            availability_events=events.events,
            nodes_degraded=[d.node_id for d in health.degraded],
            backorders_retried=retried,
        )

    async def _pull_feeds(self) -> int:
        listed: FeedSourcesResult = await workflow.execute_activity(
            ActivityName.LIST_FEED_SOURCES,
            FeedSourcesInput(),
            result_type=FeedSourcesResult,
            **OPTIONS,
        )
        applied = 0
        for source in listed.sources:
            for _ in range(MAX_PAGES_PER_SOURCE):
                fetched: FetchDeltasResult = await workflow.execute_activity(
                    ActivityName.FETCH_STOCK_DELTAS,
                    FetchDeltasInput(source=source),
                    result_type=FetchDeltasResult,
                    **OPTIONS,
                )
                result: ApplyPulledDeltasResult = await workflow.execute_activity(
                    ActivityName.APPLY_PULLED_DELTAS,
                    ApplyPulledDeltasInput(
                        source=source.source, cursor=source.cursor, page=fetched.page
                    ),
                    result_type=ApplyPulledDeltasResult,
                    **OPTIONS,
                )
                applied += result.applied
                if not fetched.page.deltas or not fetched.page.next_cursor:
                    break
                source = source.model_copy(update={"cursor": fetched.page.next_cursor})
        return applied
