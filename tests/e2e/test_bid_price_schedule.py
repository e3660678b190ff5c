"""The bid-price refresh on its Temporal Schedule: `opendom up` creates it at the interval of
OPENDOM_BID_PRICE_INTERVAL_SECONDS (hourly by default) and a triggered run stores a run row; on
the test stack a short interval runs it by itself and the prices it stores reach allocation."""

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlmodel import col, select
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from contracts.ids import BID_PRICE_SCHEDULE_ID
from contracts.names import WorkflowName
from contracts.starters import ensure_bid_price_schedule, run_bid_price_refresh_now
from ledger.db import make_engine, transaction
from ledger.tables import BidPriceRun
from tests.support.opendom_up import opendom_up


def _runs(engine) -> list[BidPriceRun]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return list(session.exec(select(BidPriceRun).order_by(col(BidPriceRun.solved_at))))


async def _wait_for_runs(engine, more_than: int, seconds: float = 60) -> list[BidPriceRun]:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        runs = _runs(engine)
        if len(runs) > more_than:
            return runs
        await asyncio.sleep(0.2)
    raise AssertionError(f"no bid-price run beyond {more_than} in {seconds} s")


def _temporal_address(output: str) -> str:
    """The launcher prints where its dev server listens."""
    return next(
        line.rsplit(" ", 1)[1]
        for line in output.splitlines()
        if line.startswith("Temporal dev server up on ")
    )


async def _described(handle):  # type: ignore[no-untyped-def]
    """The worker creates the Schedule just after it starts polling: wait for it."""
    for _ in range(300):
        try:
            return await handle.describe()
        except RPCError:
            await asyncio.sleep(0.2)
    return await handle.describe()


async def test_the_embedded_stack_creates_the_hourly_bid_price_schedule_and_a_run_stores_prices(
    tmp_path: Path,
) -> None:
    with opendom_up(tmp_path) as up:
        client = await Client.connect(
            _temporal_address(up.output()), data_converter=pydantic_data_converter
        )
        handle = client.get_schedule_handle(BID_PRICE_SCHEDULE_ID)
        description = await _described(handle)
        action = description.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == WorkflowName.BID_PRICE_REFRESH
        assert [i.every for i in description.schedule.spec.intervals] == [timedelta(hours=1)]

        engine = make_engine(f"sqlite:///{up.state_dir}/opendom.db")
        before = len(_runs(engine))
        await handle.trigger()
        runs = await _wait_for_runs(engine, before)
        assert runs[-1].status == "ok"
        engine.dispose()


async def test_a_short_interval_refreshes_by_itself_and_a_run_now_returns_what_it_stored(
    stack,
) -> None:
    before = len(_runs(stack.engine))
    await ensure_bid_price_schedule(stack.client, stack.settings.task_queue, 1)
    handle = stack.client.get_schedule_handle(BID_PRICE_SCHEDULE_ID)
    try:
        runs = await _wait_for_runs(stack.engine, before + 1)  # two runs, no trigger
        assert all(r.status == "ok" for r in runs[before:])
    finally:
        await handle.delete()

    result = await run_bid_price_refresh_now(
        stack.client, "bid-price-test-run", stack.settings.task_queue
    )

    assert result.status == "ok"
    assert _runs(stack.engine)[-1].run_id == result.run_id
