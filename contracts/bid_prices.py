"""Input and result of the bid-price refresh its Schedule starts (and of its one activity)."""

from datetime import datetime

from pydantic import BaseModel, Field


class BidPriceRefreshInput(BaseModel):
    # Demand is counted over the window and scaled to the horizon the stock must last.
    window_days: float = Field(default=28, gt=0)
    horizon_days: float = Field(default=7, gt=0)


class RefreshBidPricesInput(BaseModel):
    """The activity's input: the workflow's clock, so a retried attempt counts the same window."""

    now: datetime
    window_days: float
    horizon_days: float


class BidPriceRefreshResult(BaseModel):
    run_id: str
    status: str  # ok | failed (a failed run leaves the previous prices in force)
    orders_counted: int
    regions: int
    classes: int
    nodes: int
    skus: int
    prices: int
    solve_seconds: float
    error: str | None = None
