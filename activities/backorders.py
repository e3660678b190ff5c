"""The backorder sweep of the housekeeping run: backordered orders whose stock arrived are sent
their RETRY update, at most a batch per run (services.backorders picks them)."""

import asyncio
from datetime import timedelta

from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from contracts.activities import BackorderRetried, SweepBackordersInput, SweepBackordersResult
from contracts.names import ActivityName
from contracts.order import RetryInput
from contracts.starters import start_automatic_retry
from services import backorders

RETRY_ACCEPT_SECONDS = 10.0


class BackorderActivities:
    def __init__(
        self,
        engine: Engine,
        client: Client,
        batch: int,
        forget_exclusions_after_seconds: float,
        scan: int = 2000,
    ) -> None:
        self._engine = engine
        self._client = client
        self._batch = batch
        self._forget_after = timedelta(seconds=forget_exclusions_after_seconds)
        self._scan = scan

    @activity.defn(name=ActivityName.SWEEP_BACKORDERS)
    async def sweep_backorders(self, request: SweepBackordersInput) -> SweepBackordersResult:
        """Pick the orders (a read, off the event loop), then send each its retry at once: the
        update returns when the order has accepted it, its allocation runs in the order. An
        order that refuses (it moved on, a retry is under way) is an answer, not a failure."""
        picked = await asyncio.to_thread(
            backorders.orders_to_retry,
            self._engine,
            request.limit or self._batch,
            self._forget_after,
            scan=self._scan,
        )
        # One update id per order and what it had seen (its last allocation's stock): a retried
        # activity, or a later sweep picking a stuck order again, re-sends the same update, which
        # the order runs once.
        retried = await asyncio.gather(*(self._retry(p, "backorder-sweep") for p in picked))
        for outcome in retried:
            activity.logger.info(
                "backorder %s %s: %s",
                outcome.order_id,
                "retried" if outcome.accepted else "not retried",
                outcome.reason if outcome.accepted else outcome.why,
            )
        return SweepBackordersResult(retried=list(retried))

    async def _retry(self, picked: backorders.BackorderRetry, update_id: str) -> BackorderRetried:
        request = RetryInput(reason=picked.reason, automatic=True)
        try:
            # Bounded per order: an order whose workflow task keeps failing never accepts an
            # update, and must not hold the whole housekeeping run (holds, feeds, node health)
            # until the activity times out, run after run.
            await asyncio.wait_for(
                start_automatic_retry(
                    self._client,
                    picked.order_id,
                    request,
                    f"{update_id}-{picked.order_id}-{picked.seen}",
                ),
                RETRY_ACCEPT_SECONDS,
            )
        except TimeoutError:
            return BackorderRetried(
                order_id=picked.order_id,
                reason=picked.reason,
                accepted=False,
                why=f"not accepted within {RETRY_ACCEPT_SECONDS:.0f} s",
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            why = cause.message if isinstance(cause, ApplicationError) else str(cause)
            return BackorderRetried(
                order_id=picked.order_id, reason=picked.reason, accepted=False, why=why
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise  # Temporal retries the activity, with the same update ids
            return BackorderRetried(
                order_id=picked.order_id, reason=picked.reason, accepted=False, why="order closed"
            )
        return BackorderRetried(order_id=picked.order_id, reason=picked.reason, accepted=True)
