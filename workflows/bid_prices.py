"""The inventory-aware policy's bid prices, re-solved by a Temporal Schedule (hourly by default):
one activity reads recent demand and current stock, solves the fluid LP and stores the prices."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.bid_prices import (
        BidPriceRefreshInput,
        BidPriceRefreshResult,
        RefreshBidPricesInput,
    )
    from contracts.names import ActivityName, WorkflowName

# The LP takes seconds on a large network (benchmarks/README.md); ten minutes leaves room for a
# slow database read without letting a stuck run hold the Schedule (it skips overlapping runs).
OPTIONS = {
    "start_to_close_timeout": timedelta(minutes=10),
    "retry_policy": RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=30)),
}


@workflow.defn(name=WorkflowName.BID_PRICE_REFRESH)
class BidPriceRefreshWorkflow:
    @workflow.run
    async def run(self, request: BidPriceRefreshInput) -> BidPriceRefreshResult:
        return await workflow.execute_activity(
            ActivityName.REFRESH_BID_PRICES,
            RefreshBidPricesInput(
                now=workflow.now(),
                window_days=request.window_days,
                horizon_days=request.horizon_days,
            ),
            result_type=BidPriceRefreshResult,
            **OPTIONS,
        )
