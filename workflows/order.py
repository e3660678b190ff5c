"""The order workflow: one per order, id `order-<channel>-<external id>`.

validate -> reserve and choose node(s) -> per shipment: release to the node, wait for its events
under the node type's SLA, buy the label, hand it to the node, wait for shipped -> complete.
A shipment that is rejected, late, or moved by support compensates itself (cancel at the node,
release its reservation) and its lines are sourced again without that node. When nothing can
serve, the order waits BACKORDERED until its stock arrives (the housekeeping's backorder sweep
retries it), its hourly re-check finds some, or support retries.
"""

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.activities import (
        AllocatedShipment,
        AllocateInput,
        AllocateResult,
        BuyLabelInput,
        BuyLabelResult,
        FulfilReservationsInput,
        JoinParcelInput,
        JoinParcelResult,
        LeaveParcelInput,
        LeaveParcelResult,
        NodeCancelInput,
        NodeCancelResult,
        NodeCancelStatus,
        NodeDispatchInput,
        NodeIncident,
        NodeReleaseInput,
        ParcelLabelResult,
        ProjectOrderInput,
        ReleaseReservationsInput,
        ShippedAfterMoveInput,
    )
    from contracts.names import ActivityName, OrderQuery, OrderSignal, OrderUpdate, WorkflowName
    from contracts.order import (
        AcknowledgeInput,
        AcknowledgeResult,
        CancelInput,
        CancelResult,
        MarkShippedInput,
        MarkShippedResult,
        NodeEvent,
        NodeEventType,
        OrderWorkflowInput,
        OrderWorkflowResult,
        ReallocateInput,
        ReallocateResult,
        RetryInput,
        RetryResult,
        TakeDeliveryResult,
    )
    from contracts.patches import Patch
    from domain.carriers import (
        CarrierService,
        choose_carrier_service,
        collection_code,
        secret_collection_code,
    )
    from domain.lifecycle import (
        MOVED_SHIPMENT_STATUSES,
        NodeEventOutcome,
        ShipmentMove,
        accept_node_event,
        cancel_refusal,
        derive_status,
        force_refusal,
        has_left_node,
        mark_shipped_refusal,
        movable_shipments,
        reallocate_refusal,
        retry_refusal,
    )
    from domain.orders import (
        MOVABLE_SHIPMENT_STATUSES,
        OPEN_SHIPMENT_STATUSES,
        TERMINAL_ORDER_STATUSES,
        DeliveryMethod,
        DeliveryOptionCode,
        FulfilmentPolicy,
        OrderLine,
        OrderPromise,
        OrderState,
        OrderStatus,
        Shipment,
        ShipmentStatus,
        TimelineEntry,
    )
    from domain.sla import NodeSla
    from domain.validation import order_problems

# Ledger and read-model activities run as local activities: short, database-only and idempotent
# (a re-run after a worker crash finds its own reservations or an equal-or-newer projection), so
# they need no task round trip through the server. That is most of an order's activities
# (every `_publish`), and their large inputs (the whole order state) stay out of the history.
# One that can never succeed (a value the database refuses) must not retry inside one workflow
# task until Temporal terminates the run: refused values fail at once, anything else within
# minutes, and the order asks for a person (NeedsAttention) instead.
LEDGER_LIMIT = timedelta(minutes=5)
LEDGER = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": LEDGER_LIMIT,
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(seconds=10),
        non_retryable_error_types=["DataError", "ValidationError"],
    ),
}
# How a local activity's failure reaches the workflow: a refused value as the activity's own
# ApplicationError, the schedule-to-close as a timeout, or wrapped in an ActivityError.
LEDGER_FAILED = (ActivityError, ApplicationError, ActivityTimeoutError)
# What orders started before release 2026-12 run with: their code has no way out of a failed
# ledger step, so for them it retries as it always did.
_LEDGER_BEFORE_AUDIT = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=10)),
}
# Compensation must eventually reach the node, but not hold the order hostage for ever.
NODE_CANCEL_LIMIT = timedelta(minutes=10)
NODE_CANCEL = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": NODE_CANCEL_LIMIT,
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30)),
}
CARRIER_AND_DISPATCH = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1)),
}
# A backordered order looks for stock again on its own this often (forgetting the nodes that
# failed it: one may serve now), and asks for a person once it has waited this long.
BACKORDER_RECHECK = timedelta(hours=1)
# A label or a hand-over still retrying after this asks for a person (and keeps retrying).
STEP_PATIENCE = timedelta(minutes=30)
# A stock step whose local activity ran out of time (the database away) is tried again this often.
LEDGER_RETRY = timedelta(minutes=1)
LEDGER_RETRY_AT_MOST = timedelta(hours=1)
BACKORDER_ESCALATES_AFTER = timedelta(days=3)
# How long a node stays excluded from an order, until an allocation result brings the worker's
# setting (OPENDOM_EXCLUSION_FORGET_SECONDS): the first allocation, which excludes nothing, does.
EXCLUSION_FORGET_AFTER = timedelta(hours=24)


T = TypeVar("T")


@workflow.defn(name=WorkflowName.ORDER)
class OrderWorkflow:
    @workflow.init
    def __init__(self, input: OrderWorkflowInput) -> None:
        self._state = OrderState(order=input.order, status=OrderStatus.RECEIVED)
        self._unallocated: list[OrderLine] = list(input.order.lines)
        self._events: dict[str, dict[NodeEventType, NodeEvent]] = {}
        self._moves: dict[str, ShipmentMove] = {}
        self._slas: dict[str, NodeSla] = {}
        self._cancel_reason: str | None = None
        self._retry_requested = False
        self._allocation_rounds = 0
        self._backordered = False
        self._cancellation_settled = False
        self._tasks: list[asyncio.Task[None]] = []
        # Orders started on release 2026-12 or later take the reliability audit's fixes; older
        # ones replay the code they ran (docs/versioning.md). Asked once, here, so every handler
        # sees the same answer; the marker is the history's first command.
        self._audited = workflow.patched(Patch.ORDER_AUDIT_2026_12)
        self._ledger = LEDGER if self._audited else _LEDGER_BEFORE_AUDIT
        # Orders started on release 2026-12 (issue 13) or later index their promise.
        self._promise_indexed = workflow.patched(Patch.ORDER_PROMISE_2026_12)
        # Orders started on release 2026-12 (issue 14) or later forget an exclusion once it is
        # older than the setting, and keep the others on an automatic retry.
        self._exclusions_expire = workflow.patched(Patch.ORDER_BACKORDERS_2026_12)
        self._forget_exclusions_after = EXCLUSION_FORGET_AFTER
        # Orders started on release 2026-12 (issue 14, ship-partial) or later follow their
        # fulfilment policy, say PARTIALLY_BACKORDERED, and respect a requested delivery date.
        self._partial_patch = workflow.patched(Patch.ORDER_PARTIAL_2026_12)
        self._split = False  # a ship-complete order past its deadline whose channel says split
        self._ship_complete_expired = False
        self._release_after: dict[str, float] = {}  # shipment id -> seconds to hold its release
        # Orders started on release 2026-12 (issue 14, parcels) or later group their
        # home-delivery shipments with the customer's other orders within the channel's window.
        self._consolidates = workflow.patched(Patch.ORDER_CONSOLIDATION_2026_12)
        self._parcels: dict[str, str] = {}  # shipment id -> the parcel it travels in
        # Orders started on release 2026-12 (issue 14, divided lines) or later tell the pieces of
        # one line apart: by the allocation that sourced each (state only: no command reads it
        # unpatched).
        self._pieces_patch = workflow.patched(Patch.ORDER_DIVIDED_LINES_2026_12)
        self._allocations_started = 0
        self._allocated_by: dict[str, int] = {}  # shipment id -> the allocation that made it
        self._moved_during: dict[str, int] = {}  # moved shipment id -> allocations started then
        # Orders started on release 2026-12 (issue 14 review) or later count a pre-order's waits
        # (the escalation, a ship-complete deadline) from its promised date.
        self._preorder_waits = workflow.patched(Patch.ORDER_PREORDER_WAIT_2026_12)
        self._attention: dict[str, str] = {}  # why a person must act, by what it is about
        self._waits_on_person: set[str] = set()  # the attention entries an open wait needs
        self._deadlines: dict[str, datetime] = {}  # when each timed wait ends, by what waits
        self._followups: list[asyncio.Task[None]] = []  # late shipments being reconciled
        self._late_shipped: set[str] = set()
        self._duplicates_noted: set[tuple[str, str]] = set()
        self._unpublished = False  # a delivery taken since the last publish
        self._backordered_since: datetime | None = None
        self._last_backorder_why: str | None = None
        # What the visibility store already holds (the API sets the status at start): an upsert
        # is an event in the history and a write to the store, so only changes are sent.
        started_with = workflow.info().typed_search_attributes
        self._indexed: tuple[str | None, list[str]] = (
            started_with.get(sa.ORDER_STATUS),
            list(started_with.get(sa.FULFILLMENT_NODES) or []),
        )
        self._indexed_attention = bool(started_with.get(sa.NEEDS_ATTENTION))
        self._indexed_promise: tuple[datetime | None, datetime | None] = (
            started_with.get(sa.PROMISED_BY),
            started_with.get(sa.SHIP_BY),
        )

    # ---------------------------------------------------------------- main line
    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderWorkflowResult:
        order = input.order
        self._note(
            "received", f"{len(order.lines)} line(s) from {order.channel} ({order.order_type})"
        )
        problems = order_problems(order.lines, order.delivery_method, order.pickup_node_id)
        if problems:
            self._state.status = OrderStatus.REJECTED
            self._note("rejected", "; ".join(problems))
            await self._publish("nothing: the order was rejected")
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._result()
        await self._publish("stock reservation")
        try:
            await self._orchestrate()
        except asyncio.CancelledError:
            # Cancelled from the Temporal UI or CLI: compensate like a support cancel, then
            # let the cancellation stand.
            self._request_cancel("workflow cancelled in Temporal")
            await self._settle_cancellation()
            raise
        # Shipment coroutines may still be publishing their last state; let them land.
        await asyncio.gather(*self._tasks)
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._audited:
            # A late shipment may still be reconciling, a delivery may not be published yet.
            await workflow.wait_condition(lambda: all(t.done() for t in self._followups))

            # A delivery scan may land with the publish's own result: publish, and wait for its
            # handler, until none did (the API records one that comes after in the read model).
            def settled() -> bool:
                return workflow.all_handlers_finished() and all(t.done() for t in self._followups)

            while self._unpublished or not settled():
                await workflow.wait_condition(settled)
                if self._unpublished:
                    await self._publish(self._summary_of_waits())
        return self._result()

    async def _orchestrate(self) -> None:
        while not self._finished():
            if self._cancel_reason is not None:
                await self._settle_cancellation()
                return
            if self._unallocated:
                await self._allocate()
                continue
            await workflow.wait_condition(
                lambda: (
                    self._cancel_reason is not None or bool(self._unallocated) or self._finished()
                )
            )

    def _finished(self) -> bool:
        return self._state.status in TERMINAL_ORDER_STATUSES

    async def _allocate(self) -> None:
        # Lines stay in `_unallocated` until the result is applied, so a shipment finishing
        # meanwhile cannot make the order look complete.
        lines = list(self._unallocated)
        self._allocations_started += 1
        self._set_deadline("allocation", LEDGER_LIMIT)
        try:
            result = await self._allocate_lines(lines)
        except LEDGER_FAILED as exc:
            if not self._audited:
                raise
            self._allocation_rounds += 1
            self._retry_requested = False
            transient = _transient(exc)
            await self._wait_as_backordered(
                f"allocation failed: {_cause(exc)}",
                failure=(
                    "allocation waits for the ledger; it tries again every minute"
                    if transient
                    else "allocation cannot run: fix the cause, then retry the order"
                ),
                recheck=LEDGER_RETRY if transient else None,
            )
            return
        self._allocation_rounds += 1
        self._retry_requested = False  # consumed by this round; a new one may come now
        if result.stock_seen_movement is not None:  # state only: what the sweep compares with
            self._state.stock_seen_movement = result.stock_seen_movement
        if result.backordered:
            await self._wait_as_backordered(result.explanation)
            return
        unfilled = result.unfilled_lines if self._partial_patch else []
        if self._audited:
            self._set_deadline("allocation", None)
            self._resolve("allocation")
            if not unfilled:
                self._resolve("ship-complete")
                self._backordered_since = None
                self._last_backorder_why = None
        taken = {line.line_no for line in lines}
        # Ship-partial: the lines (or units) no node serves now stay unallocated, backordered.
        if self._pieces_patch:
            # The very lines sourced: a piece of one of them moved back meanwhile stays.
            self._unallocated = _without(self._unallocated, lines) + unfilled
        else:
            self._unallocated = [
                ln for ln in self._unallocated if ln.line_no not in taken
            ] + unfilled
        self._note("allocated", result.explanation)
        for allocated in result.shipments:
            self._start_shipment(allocated)
        self._keep_promise()
        if unfilled:
            # The shipments go on meanwhile; the rest is retried like any backorder.
            waiting = ", ".join(f"line {ln.line_no}: {ln.quantity} x {ln.sku}" for ln in unfilled)
            await self._wait_as_backordered(f"shipped partially; backordered {waiting}")
            return
        await self._publish("the node(s) to accept the release")

    def _keep_promise(self) -> None:
        """The promise after an allocation: the customer's date (the checkout's, or the first
        plan's), and the current plan's dates from the shipments still on their way. Later than
        promised: at risk, said once in the timeline until the plan keeps it again."""
        state = self._state
        planned = [
            s
            for s in state.shipments
            if s.promised_date is not None and s.status not in MOVED_SHIPMENT_STATUSES
        ]
        if not planned:
            return  # an allocation recorded before promises were (no dates in its result)
        arrives = max(s.promised_date for s in planned if s.promised_date is not None)
        ship_by = max(s.ship_by or s.promised_date for s in planned if s.promised_date is not None)
        before = state.promise
        # The customer's date: the checkout's, else the B2B buyer's "no later than", else the
        # first plan's (state only: no command depends on it).
        requested = state.order.requested_by if self._partial_patch else None
        promised = (
            before.promised_date
            if before is not None
            else state.order.promised_date or requested or arrives
        )
        at_risk = arrives > promised
        state.promise = OrderPromise(
            option=state.order.delivery_option,
            promised_date=promised,
            ship_by=ship_by,
            planned_date=arrives,
            at_risk=at_risk,
        )
        was_at_risk = before is not None and before.at_risk
        if before is None:
            sold = f" ({state.order.delivery_option})" if state.order.delivery_option else ""
            self._note("promised", f"delivery by {promised}{sold}, handed over by {ship_by}")
        if at_risk and (not was_at_risk or before is None or before.planned_date != arrives):
            self._note("promise at risk", f"arrives {arrives}, promised {promised}")
        elif was_at_risk and not at_risk:
            self._note("promise kept", f"arrives {arrives}, promised {promised}")

    async def _allocate_lines(self, lines: list[OrderLine]) -> AllocateResult:
        order = self._state.order
        if self._exclusions_expire:
            self._forget_old_exclusions()
        result: AllocateResult = await workflow.execute_local_activity(
            ActivityName.ALLOCATE_STOCK,
            AllocateInput(
                order_id=order.order_id,
                channel=order.channel,
                priority=order.priority,
                # Only the first round can use the checkout hold; later rounds re-source.
                hold_id=order.hold_id if self._allocation_rounds == 0 else None,
                lines=lines,
                destination=order.ship_to.location,
                delivery_method=order.delivery_method,
                pickup_node_id=order.pickup_node_id,
                excluded_nodes=self._state.excluded_nodes,
                first_shipment_seq=len(self._state.shipments) + 1,
                delivery_option=order.delivery_option,
                # The date the customer holds: a re-allocation keeps it, or says it is at risk.
                promised_date=(
                    self._state.promise.promised_date
                    if self._state.promise is not None
                    else order.promised_date
                    or (order.requested_by if self._partial_patch else None)
                ),
                partial=self._ships_partial(),
                requested_not_before=order.requested_not_before if self._partial_patch else None,
                # Only a workflow that tells a line's pieces apart may have a line divided.
                divide_lines=self._pieces_patch,
            ),
            result_type=AllocateResult,
            **self._ledger,
        )
        if self._exclusions_expire and result.exclusion_forget_seconds is not None:
            # The worker's setting, as recorded in this history: a replay decides the same.
            self._forget_exclusions_after = timedelta(seconds=result.exclusion_forget_seconds)
        return result

    def _ships_partial(self) -> bool:
        """Reserve what can go now: a ship-partial order, or a ship-complete one split at its
        deadline. Orders without a policy (before issue 14) are reserved whole."""
        if not self._partial_patch:
            return False
        return self._split or self._state.order.fulfilment_policy == FulfilmentPolicy.SHIP_PARTIAL

    def _ship_complete_deadline(self) -> datetime | None:
        """When a ship-complete order stops waiting for every line (None: it does not wait so)."""
        order = self._state.order
        if (
            not self._partial_patch
            or self._ship_complete_expired
            or order.fulfilment_policy != FulfilmentPolicy.SHIP_COMPLETE
        ):
            return None
        waits_from = max(order.submitted_at, self._preorder_due() or order.submitted_at)
        return waits_from + timedelta(seconds=order.ship_complete_wait_seconds)

    def _preorder_due(self) -> datetime | None:
        """A pre-order's promised date (its first instant, UTC): before it, waiting for the
        incoming stock is the plan, so its waits count from then. None: not a pre-order (or one
        started before the patch)."""
        order = self._state.order
        if (
            not self._preorder_waits
            or order.delivery_option != DeliveryOptionCode.PREORDER
            or order.promised_date is None
        ):
            return None
        return _midnight(order.promised_date)

    def _ship_complete_due(self) -> bool:
        """The ship-complete deadline has passed: the channel's rule (ask or split) applies now.
        True: the order now ships partially (the caller re-allocates at once)."""
        deadline = self._ship_complete_deadline()
        if deadline is None or workflow.now() < deadline:
            return False
        order = self._state.order
        self._ship_complete_expired = True
        waited = timedelta(seconds=order.ship_complete_wait_seconds)
        if order.ship_complete_then == "split":
            self._split = True
            self._note(
                "ship-complete deadline",
                f"not every line could go together within {waited}: shipping what can go now",
            )
            return True
        self._attend(
            "ship-complete",
            f"ship-complete order: not every line could go together within {waited}; bring in "
            "the stock, or cancel and re-order the lines that can go",
        )
        return False

    def _forget_old_exclusions(self) -> None:
        """Drop the nodes excluded longer ago than the setting: a node that failed the order
        once may serve it now. Decided from workflow time and the order's own state."""
        now = workflow.now()
        state = self._state
        for node_id in list(state.excluded_nodes):
            since = state.excluded_at.get(node_id)
            if since is None or now - since < self._forget_exclusions_after:
                continue
            state.excluded_nodes.remove(node_id)
            del state.excluded_at[node_id]
            self._note(
                "exclusion expired",
                f"{node_id} may serve again: excluded since {since:%Y-%m-%d %H:%M:%S} UTC",
            )

    async def _wait_as_backordered(
        self, why: str, failure: str | None = None, recheck: timedelta | None = BACKORDER_RECHECK
    ) -> None:
        if failure is None and self._ship_complete_due():
            return  # split: the orchestration re-allocates the lines at once, partially
        self._backordered = True
        if failure is None and (deadline := self._ship_complete_deadline()) is not None:
            # Wake at the ship-complete deadline too, to follow the channel's rule then.
            left = max(deadline - workflow.now(), timedelta(seconds=1))
            recheck = min(recheck, left) if recheck is not None else left
        if not self._audited:
            self._note("backordered", why)
            await self._publish("stock: support retries once it arrives")
            # A retry may arrive while the publish above is in flight: consume it only after
            # waiting.
            await workflow.wait_condition(
                lambda: self._retry_requested or self._cancel_reason is not None
            )
            self._backordered = False
            return
        now = workflow.now()
        if why != self._last_backorder_why:  # an hourly re-check that found the same says nothing
            self._note("backordered", why)
            self._last_backorder_why = why
        since = self._backordered_since = self._backordered_since or now
        due = self._preorder_due()
        if failure is not None:
            # Acknowledgeable, as release 107575e recorded it: support says they are on it.
            self._attend("allocation", failure)
        elif due is not None:
            # A pre-order waits for its incoming stock by plan, until its promised date: still
            # waiting then, the promise is broken and a person must know at once.
            if now >= due:
                self._attend(
                    "allocation",
                    f"pre-order promised for {due:%Y-%m-%d}, still backordered since "
                    f"{since:%Y-%m-%d %H:%M} UTC: bring in stock or cancel",
                )
        elif now - since >= BACKORDER_ESCALATES_AFTER:
            self._attend(
                "allocation",
                f"backordered since {since:%Y-%m-%d %H:%M} UTC: bring in stock or cancel",
            )
        # A refused allocation waits for a person; a backorder (or a ledger away) re-checks.
        self._set_deadline("allocation", recheck)
        await self._publish(
            "support: retry once the cause is fixed"
            if failure is not None
            else "stock: retried when it arrives, re-checked every hour, or support retries"
            if self._exclusions_expire
            else "stock: re-checked every hour, or support retries"
        )
        try:
            await workflow.wait_condition(
                lambda: (
                    self._retry_requested
                    or self._cancel_reason is not None
                    or not self._unallocated  # a late shipment shipped the lines after all
                ),
                timeout=recheck,
            )
        except TimeoutError:
            if not self._exclusions_expire:
                # The nodes that failed this order once may serve it now (M5). Since issue 14
                # each exclusion expires on its own clock instead (_forget_old_exclusions).
                self._state.excluded_nodes = []
            self._retry_requested = True
        self._set_deadline("allocation", None)
        self._backordered = False
        if not self._unallocated and self._cancel_reason is None:
            # A late shipment shipped the lines it waited for: nothing left to source.
            self._resolve("allocation")
            await self._refresh_status()

    def _start_shipment(self, allocated: AllocatedShipment) -> None:
        order = self._state.order
        service = choose_carrier_service(
            order.priority,
            allocated.distance_km,
            order.delivery_method,
            from_pickup_store=allocated.node_id == order.pickup_node_id,
        )
        if allocated.carrier and allocated.service:
            # The plan's own service, the one its promised date was worked out with.
            service = CarrierService(carrier=allocated.carrier, service=allocated.service)
        shipment = Shipment(
            shipment_id=allocated.shipment_id,
            node_id=allocated.node_id,
            node_type=allocated.node_type,
            lines=allocated.lines,
            carrier=service.carrier,
            service=service.service,
            ship_by=allocated.ship_by,
            promised_date=allocated.promised_date,
        )
        self._state.shipments.append(shipment)
        self._allocated_by[shipment.shipment_id] = self._allocations_started
        self._slas[shipment.shipment_id] = allocated.sla
        # Its release is bounded by the accept SLA from now (the release activity's limit).
        self._set_deadline(shipment.shipment_id, timedelta(seconds=allocated.sla.accept_seconds))
        if self._partial_patch and allocated.release_after_seconds:
            # A requested not-before date: reserved now, released on its release day.
            self._release_after[shipment.shipment_id] = allocated.release_after_seconds
            self._set_deadline(
                shipment.shipment_id, timedelta(seconds=allocated.release_after_seconds)
            )
        if self._cancel_reason is not None:
            self._moves[shipment.shipment_id] = ShipmentMove.cancelled_with_order(
                self._cancel_reason
            )
        self._tasks.append(asyncio.create_task(self._fulfil(shipment)))

    # ---------------------------------------------------------------- one shipment
    async def _fulfil(self, shipment: Shipment) -> None:
        sla = self._slas[shipment.shipment_id]
        try:
            if shipment.shipment_id in self._release_after:
                await self._hold_release(shipment)
            if self._consolidates and self._groups_parcels():
                await self._join_parcel(shipment)
            await self._release_to_node(shipment, sla)
            accepted = await self._node_step(
                shipment, NodeEventType.ACCEPTED, sla.accept_seconds, ShipmentStatus.ACCEPTED
            )
            if not accepted:
                return
            picked = await self._node_step(
                shipment, NodeEventType.PICKED, sla.pick_seconds, ShipmentStatus.PICKED
            )
            if not picked:
                return
            # A node that shipped on its own label (pick, pack and ship in one step) needs none.
            if not (self._audited and self._left_node(shipment.shipment_id)):
                try:
                    await self._label_and_dispatch(shipment)
                except ActivityError as exc:
                    # The node has picked it: it must hear that the parcel is not coming.
                    move = ShipmentMove.label_failed(_cause(exc), node_holds_it=self._audited)
                    self._moves.setdefault(shipment.shipment_id, move)
                    await self._move_away(shipment)
            await self._await_shipped(shipment, sla)
        except _ShipmentMoved:
            return

    async def _hold_release(self, shipment: Shipment) -> None:
        """Keep the reserved shipment from its node until its release day (a durable timer): the
        stock stays guaranteed, the node does not ship before the buyer wants it. A move or a
        cancel ends the wait at once (the release step then compensates)."""
        sid = shipment.shipment_id
        wait = timedelta(seconds=self._release_after[sid])
        self._note(
            "release scheduled",
            f"{sid} reserved at {shipment.node_id}, released to it in {wait} "
            f"(to arrive from {self._state.order.requested_not_before})",
        )
        await self._publish(f"the release day of {sid}")
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: sid in self._moves, timeout=wait)

    def _groups_parcels(self) -> bool:
        order = self._state.order
        return (
            order.consolidation_window_seconds > 0 and order.delivery_method == DeliveryMethod.HOME
        )

    async def _join_parcel(self, shipment: Shipment) -> None:
        """Join the customer's parcel for this address and node (or open one), and keep the
        shipment from its node until the parcel closes (the channel's consolidation window, a
        durable timer), so the orders placed meanwhile leave in one parcel with one label. A
        move or a cancel ends the wait at once (the release step then compensates); a ledger
        that cannot record the parcel lets the shipment go alone."""
        order = self._state.order
        sid = shipment.shipment_id
        try:
            joined: JoinParcelResult = await workflow.execute_local_activity(
                ActivityName.JOIN_PARCEL,
                JoinParcelInput(
                    order_id=order.order_id,
                    shipment_id=sid,
                    channel=order.channel,
                    customer_id=order.customer.customer_id,
                    ship_to=order.ship_to,
                    node_id=shipment.node_id,
                    units=sum(line.quantity for line in shipment.lines),
                    delivery_method=order.delivery_method,
                    window_seconds=order.consolidation_window_seconds,
                    # A parcel travels on one service: a fast order never ships as an economy one.
                    carrier=shipment.carrier,
                    service=shipment.service,
                ),
                result_type=JoinParcelResult,
                **self._ledger,
            )
        except LEDGER_FAILED as exc:
            self._note("parcel", f"{sid} ships in a parcel of its own: {_cause(exc)}")
            return
        if joined.parcel_id is None or joined.closes_at is None:
            return
        parcel = joined.parcel_id
        self._parcels[sid] = parcel
        shipment.parcel_id = parcel
        others = f" with {', '.join(joined.with_orders)}" if joined.with_orders else ""
        self._note(
            "grouped",
            f"{sid} grouped{others} into parcel {parcel} at {shipment.node_id}, released to it "
            f"at {joined.closes_at:%H:%M:%S} UTC",
        )
        wait = joined.closes_at - workflow.now()
        if wait <= timedelta(0):
            return
        self._set_deadline(sid, wait)
        await self._publish(f"parcel {parcel} to close (the customer's other orders)")
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: sid in self._moves, timeout=wait)

    async def _leave_parcel(self, shipment: Shipment) -> None:
        """A moved or cancelled shipment leaves its parcel; the others ship as they were. The
        leave must happen (a member that stays active may hold the label claim the others wait
        for): a ledger away is waited out like a stock step (`_ledger_step`), a refusal is left
        to a person."""
        sid = shipment.shipment_id
        parcel = self._parcels.pop(sid)
        shipment.parcel_id = None
        about = f"parcel:{sid}"
        pause = LEDGER_RETRY
        while True:
            try:
                left: LeaveParcelResult = await workflow.execute_local_activity(
                    ActivityName.LEAVE_PARCEL,
                    LeaveParcelInput(shipment_id=sid),
                    result_type=LeaveParcelResult,
                    **self._ledger,
                )
            except LEDGER_FAILED as exc:
                if not _transient(exc):
                    self._attend(
                        about,
                        f"{sid} could not leave parcel {parcel}: {_cause(exc)}; the parcel's "
                        "other orders may wait for its label",
                    )
                    return
                self._attend(about, f"{sid} waits for the ledger to leave parcel {parcel}")
                await workflow.sleep(pause)
                pause = min(pause * 2, LEDGER_RETRY_AT_MOST)
                continue
            self._resolve(about)
            break
        if left.parcel_id is not None:
            rest = (
                f"; {', '.join(left.remaining_orders)} still ship(s) in it"
                if left.remaining_orders
                else ""
            )
            self._note("parcel", f"{sid} left parcel {parcel}{rest}")

    async def _release_to_node(self, shipment: Shipment, sla: NodeSla) -> None:
        order = self._state.order
        sid = shipment.shipment_id
        await self._compensate_if_moved(shipment)
        self._set_deadline(sid, timedelta(seconds=sla.accept_seconds))
        release = workflow.start_activity(
            ActivityName.RELEASE_TO_NODE,
            NodeReleaseInput(
                order_id=order.order_id,
                shipment_id=sid,
                node_id=shipment.node_id,
                lines=shipment.lines,
                ship_to=order.ship_to,
                delivery_method=order.delivery_method,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(seconds=sla.accept_seconds),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )
        try:
            if self._audited:
                # A move (a node outage, support, a cancel) does not wait for a release that
                # is still retrying against an unreachable node: it is abandoned.
                await workflow.wait_condition(lambda: release.done() or sid in self._moves)
                if not release.done():
                    release.cancel()
            await release
        except ActivityError as exc:
            refused = isinstance(exc.cause, ApplicationError) and exc.cause.non_retryable
            self._moves.setdefault(sid, ShipmentMove.release_failed(refused, _cause(exc)))
            await self._move_away(shipment)
        shipment.status = ShipmentStatus.RELEASED
        self._note("released", f"{sid} released to {shipment.node_id}")
        await self._publish(f"{shipment.node_id} to accept {sid}")

    async def _node_step(
        self,
        shipment: Shipment,
        expected: NodeEventType,
        deadline_seconds: float,
        reached: ShipmentStatus,
    ) -> bool:
        """Wait for the node's next event under its SLA. False when the shipment moved away."""
        sid = shipment.shipment_id
        # Shipped (or delivered) says accepted and picked too: a WMS may only send `shipped`.
        shipped_says_so = self._audited
        if self._audited:
            self._set_deadline(sid, timedelta(seconds=deadline_seconds))
        try:
            await workflow.wait_condition(
                lambda: (
                    expected in self._events.get(sid, {})
                    or NodeEventType.REJECTED in self._events.get(sid, {})
                    or sid in self._moves
                    or (shipped_says_so and self._left_node(sid))
                ),
                timeout=timedelta(seconds=deadline_seconds),
            )
        except TimeoutError:
            self._moves.setdefault(
                sid, ShipmentMove.missed_sla(shipment.node_id, expected, deadline_seconds)
            )
        rejection = self._events.get(sid, {}).get(NodeEventType.REJECTED)
        if shipped_says_so and self._left_node(sid) and sid not in self._moves:
            rejection = None
        if rejection is not None and sid not in self._moves:
            self._moves[sid] = ShipmentMove.rejected_by_node(shipment.node_id, rejection.reason)
        if sid in self._moves:
            await self._move_away(shipment)
            return False
        shipment.status = reached
        self._note(str(expected), f"{shipment.shipment_id} {expected} by {shipment.node_id}")
        if self._audited:  # the next wait's deadline, in the state published now
            picking = timedelta(seconds=self._slas[sid].pick_seconds)
            self._set_deadline(
                sid, picking if reached == ShipmentStatus.ACCEPTED else STEP_PATIENCE
            )
        await self._publish(self._next_wait(shipment))
        return True

    def _next_wait(self, shipment: Shipment) -> str:
        if shipment.status == ShipmentStatus.ACCEPTED:
            return f"{shipment.node_id} to pick {shipment.shipment_id}"
        return f"carrier label for {shipment.shipment_id}"

    async def _label_and_dispatch(self, shipment: Shipment) -> None:
        order = self._state.order
        await self._compensate_if_moved(shipment)
        sid = shipment.shipment_id
        label = await self._patiently(
            shipment, f"the carrier label for {sid}", self._label_for(shipment)
        )
        shipment.status = ShipmentStatus.LABELLED
        shipment.tracking_number = label.tracking_number
        shipment.label_id = label.label_id
        self._note("labelled", f"{shipment.shipment_id}: {label.carrier} {label.tracking_number}")
        if self._audited:
            # In the read model before the node can ship it: a carrier's scan names this tracking.
            await self._publish(f"{shipment.node_id} to take the label for {sid}")
        await self._compensate_if_moved(shipment)
        dispatch = workflow.execute_activity(
            ActivityName.DISPATCH_AT_NODE,
            NodeDispatchInput(
                order_id=order.order_id,
                shipment_id=shipment.shipment_id,
                node_id=shipment.node_id,
                carrier=label.carrier,
                service=label.service,
                tracking_number=label.tracking_number,
                label_id=label.label_id,
            ),
            **CARRIER_AND_DISPATCH,
        )
        await self._patiently(shipment, f"the hand-over of {sid} to {shipment.node_id}", dispatch)
        await self._publish(f"{shipment.node_id} to ship {shipment.shipment_id}")

    async def _patiently(self, shipment: Shipment, what: str, step: Awaitable[T]) -> T:
        """A carrier or node step that retries until it succeeds (a carrier down for minutes
        must not move every parcel): with a deadline, after which a person is told; a move
        (force-cancel, reallocate with force) abandons it."""
        if not self._audited:
            return await step
        sid = shipment.shipment_id
        running = asyncio.ensure_future(step)

        def done_or_moved() -> bool:
            return running.done() or sid in self._moves

        self._set_deadline(sid, STEP_PATIENCE)
        try:
            await workflow.wait_condition(done_or_moved, timeout=STEP_PATIENCE)
        except TimeoutError:
            self._set_deadline(sid, None)
            self._attend(
                sid,
                f"{what} is still retrying after {STEP_PATIENCE}: check the carrier and the "
                "node; or force-cancel or reallocate with force",
                waiting=True,
            )
            await self._publish(f"{what} (retrying)")
            await workflow.wait_condition(done_or_moved)
        self._resolve(sid)
        if not running.done():
            running.cancel()
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await running
            await self._move_away(shipment)  # raises _ShipmentMoved
        return await running

    async def _label_for(self, shipment: Shipment) -> BuyLabelResult:
        service = CarrierService(carrier=shipment.carrier or "", service=shipment.service or "")
        if not service.needs_label:
            # A secret the customer shows at the store: never derivable from the order number.
            code = (
                secret_collection_code(workflow.random())
                if self._audited
                else collection_code(shipment.shipment_id)
            )
            return BuyLabelResult(label_id=code, tracking_number=code, **service.model_dump())
        if self._consolidates and shipment.shipment_id in self._parcels:
            return await self._parcel_label(shipment, service)
        return await workflow.execute_activity(
            ActivityName.BUY_LABEL,
            self._label_request(shipment, service),
            result_type=BuyLabelResult,
            **CARRIER_AND_DISPATCH,
        )

    def _label_request(self, shipment: Shipment, service: CarrierService) -> BuyLabelInput:
        """What a carrier label for this shipment asks, its own or its parcel's."""
        order = self._state.order
        return BuyLabelInput(
            order_id=order.order_id,
            shipment_id=shipment.shipment_id,
            node_id=shipment.node_id,
            carrier=service.carrier,
            service=service.service,
            ship_to=order.ship_to,
            units=sum(line.quantity for line in shipment.lines),
        )

    async def _parcel_label(self, shipment: Shipment, service: CarrierService) -> BuyLabelResult:
        """The parcel's one label: bought by the first member to get here, reused by the rest."""
        sid = shipment.shipment_id
        label: ParcelLabelResult = await workflow.execute_activity(
            ActivityName.PARCEL_LABEL,
            self._label_request(shipment, service),
            result_type=ParcelLabelResult,
            **CARRIER_AND_DISPATCH,
        )
        parcel = label.parcel_id
        if parcel is None:  # every other member left: a parcel of its own
            self._parcels.pop(sid, None)
            shipment.parcel_id = None
        elif label.shared_with:
            others = ", ".join(label.shared_with)
            how = "bought" if label.bought else "shares"
            self._note("parcel", f"{sid} {how} the label of parcel {parcel} with {others}")
        return BuyLabelResult(
            label_id=label.label_id,
            tracking_number=label.tracking_number,
            carrier=label.carrier,
            service=label.service,
        )

    async def _await_shipped(self, shipment: Shipment, sla: NodeSla) -> None:
        sid = shipment.shipment_id
        audited = self._audited

        def shipped_or_moved() -> bool:
            seen = self._events.get(sid, {})
            if audited:  # a rejection after pick is acted on; a delivery says it shipped
                return self._left_node(sid) or NodeEventType.REJECTED in seen or sid in self._moves
            return NodeEventType.SHIPPED in seen or sid in self._moves

        if audited:
            self._set_deadline(sid, timedelta(seconds=sla.ship_seconds))
        try:
            await workflow.wait_condition(
                shipped_or_moved, timeout=timedelta(seconds=sla.ship_seconds)
            )
        except TimeoutError:
            # The parcel is picked and labelled: moving it now costs more than chasing the node.
            self._note("late", f"{shipment.node_id} missed its ship SLA for {sid}; still waiting")
            if audited:
                self._set_deadline(sid, None)
                self._attend(
                    sid,
                    f"{sid} is labelled at {shipment.node_id} but not shipped after its ship SLA "
                    f"({sla.ship_seconds:g}s): chase the node, then mark it shipped, re-release it "
                    "(reallocate with force) or force-cancel the order",
                    waiting=True,
                )
            await self._publish(f"{shipment.node_id} to ship {sid} (late)")
            await workflow.wait_condition(shipped_or_moved)
        if audited:
            self._set_deadline(sid, None)
            self._resolve(sid)
        if not self._shipped_per_node(sid):
            await self._compensate_if_moved(shipment)  # a parcel that left stays shipped
        await self._fulfil_reserved(shipment)
        seen = self._events[sid]
        shipped = seen.get(NodeEventType.SHIPPED) or seen[NodeEventType.DELIVERED]
        shipment.status = ShipmentStatus.SHIPPED
        shipment.shipped_at = shipped.occurred_at or workflow.now()
        shipment.tracking_number = shipped.tracking_number or shipment.tracking_number
        self._note(
            "shipped", f"{sid} shipped from {shipment.node_id}, tracking {shipment.tracking_number}"
        )
        if audited and NodeEventType.DELIVERED in seen:
            shipment.status = ShipmentStatus.DELIVERED
            shipment.delivered_at = seen[NodeEventType.DELIVERED].occurred_at or workflow.now()
            self._note("delivered", f"{sid} delivered")
        await self._refresh_status()

    def _shipped_per_node(self, sid: str) -> bool:
        if self._audited:
            return self._left_node(sid)
        return NodeEventType.SHIPPED in self._events.get(sid, {})

    def _left_node(self, sid: str) -> bool:
        return has_left_node(self._events.get(sid, {}))

    async def _fulfil_reserved(self, shipment: Shipment) -> None:
        """The shipment left its node: its reserved units leave on hand."""
        seen = self._events.get(shipment.shipment_id, {})
        shipped = seen.get(NodeEventType.SHIPPED) or seen.get(NodeEventType.DELIVERED)
        request = FulfilReservationsInput(
            order_id=self._state.order.order_id,
            shipment_id=shipment.shipment_id,
            shipped_at=shipped.occurred_at if shipped is not None else None,
            node_id=shipment.node_id,
            ship_by=shipment.ship_by,
        )
        what = f"the stock of {shipment.shipment_id} taken off {shipment.node_id}"
        await self._ledger_step(ActivityName.FULFIL_RESERVATIONS, request, what)

    async def _ledger_step(self, activity: ActivityName, request: BaseModel, what: str) -> None:
        """A stock step that must happen: a database away for longer than the local activity's
        limit is waited out (retried every minute, a person told meanwhile); a step the
        database refuses is left to a person (`opendom reconcile` shows the drift)."""
        if not self._audited:
            await workflow.execute_local_activity(activity, request, **self._ledger)
            return
        about = f"stock:{what}"
        pause = LEDGER_RETRY
        while True:
            try:
                await workflow.execute_local_activity(activity, request, **self._ledger)
            except LEDGER_FAILED as exc:
                if not _transient(exc):
                    self._attend(about, f"{what} failed: {_cause(exc)}; run `opendom reconcile`")
                    return
                self._attend(about, f"{what} waits for the ledger: {_cause(exc)}")
                await workflow.sleep(pause)
                pause = min(pause * 2, LEDGER_RETRY_AT_MOST)  # days of retries, not weeks
                continue
            self._resolve(about)
            return

    async def _compensate_if_moved(self, shipment: Shipment) -> None:
        sid = shipment.shipment_id
        if self._audited and sid not in self._moves and not self._left_node(sid):
            # A rejection after pick is a rejection: the node will not ship it.
            rejection = self._events.get(sid, {}).get(NodeEventType.REJECTED)
            if rejection is not None:
                self._moves[sid] = ShipmentMove.rejected_by_node(shipment.node_id, rejection.reason)
        if sid in self._moves:
            await self._move_away(shipment)

    async def _move_away(self, shipment: Shipment) -> None:
        """Compensate one shipment: cancel at its node, release its stock, source its lines again."""
        move = self._moves[shipment.shipment_id]
        order_id = self._state.order.order_id
        if move.cancels_at_node and self._audited and move.cancel_later:
            # The node is down: its lines are sourced again now, the cancel follows.
            self._followups.append(asyncio.create_task(self._cancel_later(shipment, move.reason)))
        elif move.cancels_at_node:
            answer = await self._cancel_at_node(shipment, move.reason)
            if self._audited and answer == NodeCancelStatus.TOO_LATE:
                await self._kept_as_shipped(shipment, move)
                raise _ShipmentMoved()
        await self._release_reserved(
            ReleaseReservationsInput(
                order_id=order_id,
                shipment_ids=[shipment.shipment_id],
                incident=self._incident(shipment, move),
            )
        )
        if shipment.shipment_id in self._parcels:
            await self._leave_parcel(shipment)
        self._set_deadline(shipment.shipment_id, None)
        shipment.status = move.status
        shipment.reason = move.reason
        self._note(str(move.status).lower(), f"{shipment.shipment_id}: {move.reason}")
        self._moved_during[shipment.shipment_id] = self._allocations_started
        if move.source_again:
            if shipment.node_id not in self._state.excluded_nodes:
                self._state.excluded_nodes.append(shipment.node_id)
            if self._exclusions_expire:  # failed again: excluded afresh, from now
                self._state.excluded_at[shipment.node_id] = workflow.now()
            self._unallocated.extend(shipment.lines)
            self._note(
                "reallocating",
                f"lines {[ln.line_no for ln in shipment.lines]} "
                f"sourced again without {shipment.node_id}",
            )
        await self._refresh_status()
        if self._audited and self._left_node(shipment.shipment_id):
            # It shipped while it was being moved: a real shipment after all.
            self._reconcile_late_shipment(shipment)
        raise _ShipmentMoved()

    async def _release_reserved(self, request: ReleaseReservationsInput) -> None:
        what = f"the release of {', '.join(request.shipment_ids or ['the order'])}'s stock"
        await self._ledger_step(ActivityName.RELEASE_RESERVATIONS, request, what)

    async def _cancel_later(self, shipment: Shipment, reason: str) -> None:
        answer = await self._cancel_at_node(shipment, reason)
        if answer == NodeCancelStatus.TOO_LATE:  # it had shipped: a real shipment after all
            # Only once the move has released its stock, or the reconciliation finds nothing.
            await workflow.wait_condition(lambda: shipment.status not in OPEN_SHIPMENT_STATUSES)
            if shipment.status in MOVED_SHIPMENT_STATUSES:  # not reconciled by its `shipped`
                self._reconcile_late_shipment(shipment)

    async def _kept_as_shipped(self, shipment: Shipment, move: ShipmentMove) -> None:
        """The node answered the cancel: too late, it has shipped. The move does not happen:
        the shipment ships, its lines are not sourced again, its stock leaves that node."""
        sid = shipment.shipment_id
        del self._moves[sid]
        self._set_deadline(sid, None)
        self._note("shipped", f"{sid}: {shipment.node_id} could not cancel, it has shipped")
        if move.status == ShipmentStatus.CANCELLED:
            self._attend(
                sid,
                f"{sid} had already shipped from {shipment.node_id} when the order was "
                "cancelled: raise a return",
            )
        await self._fulfil_reserved(shipment)
        shipment.status = ShipmentStatus.SHIPPED
        shipped = self._events.get(sid, {}).get(NodeEventType.SHIPPED)
        shipment.shipped_at = (shipped.occurred_at if shipped else None) or workflow.now()
        if shipped is not None and shipped.tracking_number:
            shipment.tracking_number = shipped.tracking_number
        await self._refresh_status()

    def _reconcile_late_shipment(self, shipment: Shipment) -> None:
        if shipment.shipment_id in self._late_shipped:
            return
        self._late_shipped.add(shipment.shipment_id)
        self._followups.append(asyncio.create_task(self._shipped_after_move(shipment)))

    async def _shipped_after_move(self, shipment: Shipment) -> None:
        """A node shipped a shipment the order had moved away (H3): the parcel is real. Its
        units leave that node; lines not sourced again stay with it; a replacement not yet
        picked is cancelled; one already on its way is a double shipment, for a person."""
        sid = shipment.shipment_id
        was = shipment.status
        self._note(
            "shipped",
            f"{sid} shipped from {shipment.node_id} after it was {str(was).lower()}: "
            "a real shipment",
        )
        seen = self._events.get(sid, {})
        left = seen.get(NodeEventType.SHIPPED) or seen.get(NodeEventType.DELIVERED)
        await self._ledger_step(
            ActivityName.RECORD_SHIPPED_AFTER_MOVE,
            ShippedAfterMoveInput(
                order_id=self._state.order.order_id,
                shipment_id=sid,
                shipped_at=left.occurred_at if left is not None else None,
            ),
            f"the stock of {sid} taken off {shipment.node_id}",
        )
        shipment.status = (
            ShipmentStatus.DELIVERED if NodeEventType.DELIVERED in seen else ShipmentStatus.SHIPPED
        )
        shipped = seen.get(NodeEventType.SHIPPED) or seen.get(NodeEventType.DELIVERED)
        shipment.shipped_at = (shipped.occurred_at if shipped else None) or workflow.now()
        if shipped is not None and shipped.tracking_number:
            shipment.tracking_number = shipped.tracking_number
        covered = {line.line_no for line in shipment.lines}
        if self._pieces_patch:
            # Its own lines, put back when it moved, if no allocation took them since.
            self._unallocated = _without(self._unallocated, shipment.lines)
        else:
            self._unallocated = [ln for ln in self._unallocated if ln.line_no not in covered]
        doubles: list[str] = []
        moved_during = self._moved_during.get(sid)
        for other in self._state.shipments:
            if other is shipment or not covered & {ln.line_no for ln in other.lines}:
                continue
            if (
                self._pieces_patch
                and moved_during is not None
                and self._allocated_by.get(other.shipment_id, 0) <= moved_during
            ):
                continue  # allocated before the move: another piece of a divided line
            replaces_only_these = {ln.line_no for ln in other.lines} <= covered
            if other.status in MOVABLE_SHIPMENT_STATUSES and replaces_only_these:
                self._moves.setdefault(other.shipment_id, ShipmentMove.superseded(sid))
            elif other.status not in MOVED_SHIPMENT_STATUSES:
                doubles.append(other.shipment_id)
        if doubles:
            self._attend(
                sid,
                f"{sid} shipped late from {shipment.node_id} and its lines also go in "
                f"{', '.join(doubles)}: a double shipment; intercept one or raise a return",
            )
        await self._refresh_status()

    def _incident(self, shipment: Shipment, move: ShipmentMove) -> NodeIncident | None:
        kind = move.incident
        if kind is None:
            return None
        return NodeIncident(
            node_id=shipment.node_id,
            shipment_id=shipment.shipment_id,
            kind=kind,
            reason=move.reason,
        )

    async def _cancel_at_node(self, shipment: Shipment, reason: str) -> str | None:
        """The node's answer (a NodeCancelStatus), or None when it could not be reached."""
        try:
            answer = await workflow.execute_activity(
                ActivityName.CANCEL_AT_NODE,
                NodeCancelInput(
                    order_id=self._state.order.order_id,
                    shipment_id=shipment.shipment_id,
                    node_id=shipment.node_id,
                    reason=reason,
                ),
                result_type=NodeCancelResult,
                **NODE_CANCEL,
            )
        except ActivityError as exc:
            detail = (
                f"could not cancel {shipment.shipment_id} at "
                f"{shipment.node_id}: {_cause(exc)}; follow up with the node"
            )
            self._note("attention", detail)
            if self._audited:
                self._attend(f"cancel:{shipment.shipment_id}", detail)
            return None
        if answer.status == NodeCancelStatus.TOO_LATE and not self._audited:
            self._note(
                "attention",
                f"could not cancel {shipment.shipment_id} at {shipment.node_id}: it answered "
                "too late to cancel; follow up with the node",
            )
        return answer.status

    # ---------------------------------------------------------------- cancellation
    async def _settle_cancellation(self) -> None:
        """Every open shipment compensates itself; then release whatever is left."""
        await workflow.wait_condition(
            lambda: not any(s.status in OPEN_SHIPMENT_STATUSES for s in self._state.shipments)
        )
        await self._release_reserved(ReleaseReservationsInput(order_id=self._state.order.order_id))
        self._unallocated = []
        self._backordered = False
        self._state.status = OrderStatus.CANCELLED
        self._note("cancelled", self._cancel_reason or "")
        await self._publish("nothing: the order is cancelled")
        self._cancellation_settled = True

    # ---------------------------------------------------------------- messages
    @workflow.signal(name=OrderSignal.NODE_EVENT)
    def node_event(self, event: NodeEvent) -> None:
        shipment = next(
            (s for s in self._state.shipments if s.shipment_id == event.shipment_id), None
        )
        seen = self._events.get(event.shipment_id, {})
        decision = accept_node_event(shipment, event.shipment_id, event.node_id, event.event, seen)
        if self._audited and shipment is not None:
            self._take_node_event(shipment, event, decision.outcome, seen)
            return
        if decision.note is not None:
            self._note("ignored", decision.note)
        if shipment is None or not decision.accepted:
            return
        self._events.setdefault(event.shipment_id, seen)[event.event] = event
        if event.event == NodeEventType.DELIVERED:
            shipment.status = ShipmentStatus.DELIVERED
            shipment.delivered_at = event.occurred_at or workflow.now()
            self._note("delivered", f"{event.shipment_id} delivered")
            self._unpublished = True

    @workflow.update(name=OrderUpdate.TAKE_DELIVERY)
    async def take_delivery(self, event: NodeEvent) -> TakeDeliveryResult:
        """A delivery scan, in the read model before this returns (see OrderUpdate)."""
        self.node_event(event)
        if self._unpublished:
            await self._publish(self._summary_of_waits())
        shipment = self._shipment(event.shipment_id)
        return TakeDeliveryResult(
            order_id=self._state.order.order_id,
            shipment_id=event.shipment_id,
            shipment_status=str(shipment.status) if shipment is not None else None,
        )

    def _take_node_event(
        self,
        shipment: Shipment,
        event: NodeEvent,
        outcome: NodeEventOutcome,
        seen: dict[NodeEventType, NodeEvent],
    ) -> None:
        """Every event from a shipment's node is recorded; one that changes the truth is acted
        on (a delivery before `shipped` says it shipped; `shipped` after a move is a shipment)."""
        sid = event.shipment_id
        if outcome == NodeEventOutcome.UNKNOWN_SHIPMENT:
            self._note("ignored", f"{event.event} from {event.node_id} for {sid}, not its node")
            return
        if outcome == NodeEventOutcome.DUPLICATE:
            key = (sid, str(event.event))
            if key not in self._duplicates_noted:  # nodes retry callbacks: say it once
                self._duplicates_noted.add(key)
                self._note("duplicate", f"{event.event} for {sid} again from {event.node_id}")
            return
        self._events.setdefault(sid, seen)[event.event] = event
        if event.event == NodeEventType.DELIVERED:
            if shipment.status == ShipmentStatus.SHIPPED:
                shipment.status = ShipmentStatus.DELIVERED
                shipment.delivered_at = event.occurred_at or workflow.now()
                self._note("delivered", f"{sid} delivered")
                self._unpublished = True
            elif shipment.status in OPEN_SHIPMENT_STATUSES:
                self._note("delivered", f"{sid} delivered before its node said shipped")
        elif event.event == NodeEventType.REJECTED and shipment.status in _PAST_PICK:
            self._note("rejected", f"{sid} rejected by {event.node_id} after pick: {event.reason}")
        if shipment.status in MOVED_SHIPMENT_STATUSES and has_left_node(seen):
            self._reconcile_late_shipment(shipment)

    @workflow.update(name=OrderUpdate.CANCEL)
    async def cancel(self, request: CancelInput) -> CancelResult:
        self._request_cancel(request.reason)
        # Return once the read model says so, so support sees what they just did.
        await workflow.wait_condition(lambda: self._cancellation_settled)
        return CancelResult(order_id=self._state.order.order_id, status=self._state.status)

    @workflow.update(name=OrderUpdate.MARK_SHIPPED)
    async def mark_shipped(self, request: MarkShippedInput) -> MarkShippedResult:
        shipment = self._shipment(request.shipment_id)
        assert shipment is not None  # the validator refused otherwise
        self._note("support", f"{shipment.shipment_id} marked shipped: {request.reason}")
        self.node_event(
            NodeEvent(
                shipment_id=shipment.shipment_id,
                node_id=shipment.node_id,
                event=NodeEventType.SHIPPED,
                tracking_number=request.tracking_number,
                reason=request.reason,
            )
        )
        await workflow.wait_condition(
            lambda: shipment.status in (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED)
        )
        return MarkShippedResult(
            order_id=self._state.order.order_id,
            shipment_id=shipment.shipment_id,
            status=self._state.status,
        )

    @mark_shipped.validator
    def _validate_mark_shipped(self, request: MarkShippedInput) -> None:
        refusal = force_refusal(self._audited) or mark_shipped_refusal(
            self._shipment(request.shipment_id), request.shipment_id
        )
        if refusal:
            raise ApplicationError(refusal, type="MarkShippedRefused", non_retryable=True)

    @workflow.update(name=OrderUpdate.ACKNOWLEDGE)
    async def acknowledge(self, request: AcknowledgeInput) -> AcknowledgeResult:
        done = [about for about in self._attention if about not in self._waits_on_person]
        seen = "; ".join(self._attention[about] for about in done)
        self._note("acknowledged", f"{seen}: {request.reason}")
        for about in done:
            self._resolve(about)
        await self._publish(self._summary_of_waits())
        return AcknowledgeResult(order_id=self._state.order.order_id, status=self._state.status)

    @acknowledge.validator
    def _validate_acknowledge(self, request: AcknowledgeInput) -> None:
        if self._waits_on_person and set(self._attention) <= self._waits_on_person:
            raise ApplicationError(
                "the order waits on a person: resolve the wait (retry, mark shipped, reallocate "
                "or cancel with force) rather than acknowledge it",
                type="AcknowledgeRefused",
                non_retryable=True,
            )
        if not self._attention:
            raise ApplicationError(
                "nothing on this order needs attention",
                type="AcknowledgeRefused",
                non_retryable=True,
            )

    def _shipment(self, shipment_id: str) -> Shipment | None:
        return next((s for s in self._state.shipments if s.shipment_id == shipment_id), None)

    def _request_cancel(self, reason: str) -> None:
        self._cancel_reason = reason
        # Compensation is bounded by the cancel at the node's schedule-to-close.
        self._set_deadline("cancel", NODE_CANCEL_LIMIT)
        for shipment in self._state.shipments:
            if shipment.status in OPEN_SHIPMENT_STATUSES:
                self._moves.setdefault(
                    shipment.shipment_id, ShipmentMove.cancelled_with_order(reason)
                )

    @cancel.validator
    def _validate_cancel(self, request: CancelInput) -> None:
        refusal = (request.force and force_refusal(self._audited)) or cancel_refusal(
            self._state.status,
            self._state.shipments,
            cancel_in_progress=self._cancel_reason is not None,
            force=request.force,
        )
        if refusal:
            raise ApplicationError(refusal, type="CancelRefused", non_retryable=True)

    @workflow.update(name=OrderUpdate.RETRY)
    async def retry(self, request: RetryInput) -> RetryResult:
        rounds = self._allocation_rounds
        self._note("retry", request.reason)
        if self._audited and not (self._exclusions_expire and request.automatic):
            # A person retries because something changed: the nodes that failed it may serve.
            # The sweep retries because stock arrived: recent exclusions still stand.
            self._state.excluded_nodes = []
            if self._exclusions_expire:
                self._state.excluded_at = {}
        self._retry_requested = True
        await workflow.wait_condition(
            lambda: self._allocation_rounds > rounds or self._cancel_reason is not None
        )
        return RetryResult(order_id=self._state.order.order_id, status=self._state.status)

    @retry.validator
    def _validate_retry(self, request: RetryInput) -> None:
        refusal = retry_refusal(self._state.status, retry_in_progress=self._retry_requested)
        if refusal:
            raise ApplicationError(refusal, type="RetryRefused", non_retryable=True)

    @workflow.update(name=OrderUpdate.REALLOCATE)
    async def reallocate(self, request: ReallocateInput) -> ReallocateResult:
        moving = movable_shipments(
            self._state.shipments, request.node_id, include_picked=request.force
        )
        cancel_later = self._audited and request.cancel_in_background
        for shipment in moving:
            self._moves.setdefault(
                shipment.shipment_id,
                ShipmentMove.moved_by_support(request.reason, cancel_later=cancel_later),
            )
        ids = {s.shipment_id for s in moving}
        await workflow.wait_condition(
            lambda: all(
                s.status not in OPEN_SHIPMENT_STATUSES
                for s in self._state.shipments
                if s.shipment_id in ids
            )
        )
        return ReallocateResult(
            order_id=self._state.order.order_id,
            moved_shipments=sorted(ids),
            status=self._state.status,
        )

    @reallocate.validator
    def _validate_reallocate(self, request: ReallocateInput) -> None:
        refusal = reallocate_refusal(
            self._state.status,
            self._state.shipments,
            request.node_id,
            cancel_in_progress=self._cancel_reason is not None,
            force=request.force,
        )
        if request.force:
            refusal = force_refusal(self._audited) or refusal
        if refusal:
            raise ApplicationError(refusal, type="ReallocateRefused", non_retryable=True)

    @workflow.query(name=OrderQuery.STATE)
    def state(self) -> OrderState:
        return self._state

    # ---------------------------------------------------------------- bookkeeping
    def _note(self, event: str, detail: str) -> None:
        if self._audited:  # a partner's text must not make the read model refuse the order
            detail = detail.replace("\x00", "")
        self._state.timeline.append(TimelineEntry(at=workflow.now(), event=event, detail=detail))

    def _attend(self, about: str, why: str, waiting: bool = False) -> None:
        """A person must act (NeedsAttention): in the timeline, the state and the UI details.
        `waiting`: the order waits on that person with no deadline, so the flag stays until
        the wait ends (acknowledging it would leave the order waiting silently)."""
        why = why.replace("\x00", "")
        if waiting:
            self._waits_on_person.add(about)
        if self._attention.get(about) != why:
            self._attention[about] = why
            self._note("attention", why)

    def _resolve(self, about: str) -> None:
        self._attention.pop(about, None)
        self._waits_on_person.discard(about)

    def _set_deadline(self, what: str, after: timedelta | None) -> None:
        if not self._audited:
            return
        if after is None:
            self._deadlines.pop(what, None)
        else:
            self._deadlines[what] = workflow.now() + after

    async def _refresh_status(self) -> None:
        self._derive_status()
        if self._state.status == OrderStatus.COMPLETED:
            self._note("completed", "every shipment has shipped")
            await self._publish("nothing: the order is complete")
        else:
            await self._publish(self._summary_of_waits())

    def _summary_of_waits(self) -> str:
        if self._cancel_reason is not None:
            return "shipments to be cancelled at their nodes"
        if self._unallocated and self._backordered:
            return "stock for the backordered lines: retried when it arrives, or support retries"
        if self._unallocated:
            return "stock reservation for moved lines"
        open_ = [s for s in self._state.shipments if s.status in OPEN_SHIPMENT_STATUSES]
        return "; ".join(f"{s.shipment_id} at {s.node_id}: {s.status}" for s in open_) or "-"

    async def _publish(self, waiting_for: str) -> None:
        """Make the state visible: search attributes, UI details, and the read model."""
        state = self._state
        self._derive_status()
        state.waiting_for = waiting_for
        # Ordered by the history, not only by a counter: a workflow task that failed (a worker
        # killed) may have projected versions its retry then makes again with other content;
        # the retry's history is longer, so its projections win (ledger.orders_view.project).
        state.version = max(state.version + 1, workflow.info().get_current_history_length() * 1000)
        self._unpublished = False
        indexed = (str(state.status), state.fulfilment_nodes())
        if indexed != self._indexed:
            workflow.upsert_search_attributes(
                [sa.ORDER_STATUS.value_set(indexed[0]), sa.FULFILLMENT_NODES.value_set(indexed[1])]
            )
            self._indexed = indexed
        if self._promise_indexed and state.promise is not None:
            promise = (_midnight(state.promise.promised_date), _midnight(state.promise.ship_by))
            if promise != self._indexed_promise:
                workflow.upsert_search_attributes(
                    [sa.PROMISED_BY.value_set(promise[0]), sa.SHIP_BY.value_set(promise[1])]
                )
                self._indexed_promise = promise
        attention = ""
        if self._audited:
            open_waits = not self._finished()
            state.deadline = (
                min(self._deadlines.values()) if self._deadlines and open_waits else None
            )
            state.attention = "; ".join(self._attention.values()) or None
            if bool(state.attention) != self._indexed_attention:
                workflow.upsert_search_attributes(
                    [sa.NEEDS_ATTENTION.value_set(bool(state.attention))]
                )
                self._indexed_attention = bool(state.attention)
            if state.attention:
                attention = f"\n\n**needs attention**: {state.attention}"
            if state.deadline is not None:
                attention += f"\n\nnext deadline: {state.deadline:%Y-%m-%d %H:%M:%S} UTC"
        workflow.set_current_details(
            f"**{state.status}** - waiting for {waiting_for}\n\n"
            f"shipments: {', '.join(f'{s.shipment_id}@{s.node_id}={s.status}' for s in state.shipments) or 'none'}"
            f"{attention}"
        )
        project = ActivityName.PROJECT_ORDER
        # A snapshot: a retry of this activity must not carry later changes.
        document = ProjectOrderInput(document=state.model_dump(mode="json"))
        if not self._audited:
            await workflow.execute_local_activity(project, document, **self._ledger)
            return
        try:
            await workflow.execute_local_activity(project, document, **self._ledger)
        except LEDGER_FAILED as exc:
            # The order goes on; its read model lags until the next publish succeeds.
            workflow.logger.warning("read model not updated for %s: %s", state.order.order_id, exc)
            if not self._indexed_attention:
                workflow.upsert_search_attributes([sa.NEEDS_ATTENTION.value_set(True)])
                self._indexed_attention = True

    def _derive_status(self) -> None:
        if self._cancel_reason is None:
            self._state.status = derive_status(
                self._state.status,
                self._state.shipments,
                len(self._unallocated),
                backordered=self._backordered,
                says_partial=self._partial_patch,
            )

    def _result(self) -> OrderWorkflowResult:
        return OrderWorkflowResult(
            order_id=self._state.order.order_id,
            status=self._state.status,
            shipments=self._state.shipments,
        )


# After pick a node rejection can only come from a node that will not ship what it picked.
_PAST_PICK = frozenset({ShipmentStatus.PICKED, ShipmentStatus.LABELLED})


class _ShipmentMoved(Exception):
    """Unwinds a shipment's coroutine once it has compensated; never leaves the workflow."""


def _without(lines: list[OrderLine], taken: list[OrderLine]) -> list[OrderLine]:
    """`lines` less each of `taken` (the same objects), once each."""
    rest = list(lines)
    for line in taken:
        at = next((i for i, ln in enumerate(rest) if ln is line), None)
        if at is not None:
            del rest[at]
    return rest


def _transient(exc: FailureError) -> bool:
    """A local activity that ran out of time (the database away), not one the database refused."""
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    return isinstance(cause, ActivityTimeoutError)


def _cause(exc: FailureError) -> str:
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    return str(cause) if cause is not None else str(exc)


def _midnight(day: date) -> datetime:
    """A date as the Datetime search attributes hold it: its first instant, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
