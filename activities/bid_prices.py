"""The bid-price refresh as a Temporal activity: services.bid_prices does the work."""

from datetime import timedelta

from sqlalchemy import Engine
from temporalio import activity

from contracts.bid_prices import BidPriceRefreshResult, RefreshBidPricesInput
from contracts.names import ActivityName
from services.bid_prices import refresh_bid_prices


class BidPriceActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name=ActivityName.REFRESH_BID_PRICES)
    def refresh_bid_prices(self, request: RefreshBidPricesInput) -> BidPriceRefreshResult:
        """Sync: the LP is CPU work, run on the worker's activity threads. A retry (the same
        `now`) finds its run in force and stores nothing (services.bid_prices)."""
        refreshed = refresh_bid_prices(
            self._engine,
            request.now,
            window=timedelta(days=request.window_days),
            horizon=timedelta(days=request.horizon_days),
        )
        activity.logger.info(
            "bid prices %s: %s, %d orders, %d prices, LP %.2f s",
            refreshed.run_id,
            refreshed.status,
            refreshed.orders_counted,
            refreshed.prices,
            refreshed.solve_seconds,
        )
        return BidPriceRefreshResult.model_validate(refreshed.model_dump())
