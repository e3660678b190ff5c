"""The order workflow: one per order, id `order-<channel>-<external id>`.

validate -> reserve and choose node(s) -> per shipment: release to the node, wait for its events
under the node type's SLA, buy the label, hand it to the node, wait for shipped -> complete.
A shipment that is rejected, late, or moved by support compensates itself (cancel at the node,
release its reservation) and its lines are sourced again without that node. When nothing can
serve, the order waits BACKORDERED until support retries.
"""

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.activities import (
        AllocatedShipment,
        AllocateInput,
        AllocateResult,
        BuyLabelInput,
        BuyLabelResult,
        FulfilReservationsInput,
        NodeCancelInput,
        NodeDispatchInput,
        NodeIncident,
        NodeReleaseInput,
        ProjectOrderInput,
        ReleaseReservationsInput,
    )
    from contracts.names import ActivityName, OrderQuery, OrderSignal, OrderUpdate, WorkflowName
    from contracts.order import (
        CancelInput,
        CancelResult,
        NodeEvent,
        NodeEventType,
        OrderWorkflowInput,
        OrderWorkflowResult,
        ReallocateInput,
        ReallocateResult,
        RetryInput,
        RetryResult,
    )
    from domain.carriers import CarrierService, choose_carrier_service, collection_code
    from domain.lifecycle import (
        ShipmentMove,
        accept_node_event,
        cancel_refusal,
        derive_status,
        movable_shipments,
        reallocate_refusal,
        retry_refusal,
    )
    from domain.orders import (
        OPEN_SHIPMENT_STATUSES,
        TERMINAL_ORDER_STATUSES,
        OrderLine,
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
LEDGER = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=10)),
}
# Compensation must eventually reach the node, but not hold the order hostage for ever.
NODE_CANCEL = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(minutes=10),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30)),
}
CARRIER_AND_DISPATCH = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1)),
}


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
        # What the visibility store already holds (the API sets the status at start): an upsert
        # is an event in the history and a write to the store, so only changes are sent.
        started_with = workflow.info().typed_search_attributes
        self._indexed: tuple[str | None, list[str]] = (
            started_with.get(sa.ORDER_STATUS),
            list(started_with.get(sa.FULFILLMENT_NODES) or []),
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
        order = self._state.order
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
            ),
            result_type=AllocateResult,
            **LEDGER,
        )
        self._allocation_rounds += 1
        self._retry_requested = False  # consumed by this round; a new one may come now
        if result.backordered:
            await self._wait_as_backordered(result.explanation)
            return
        taken = {line.line_no for line in lines}
        self._unallocated = [ln for ln in self._unallocated if ln.line_no not in taken]
        self._note("allocated", result.explanation)
        for allocated in result.shipments:
            self._start_shipment(allocated)
        await self._publish("the node(s) to accept the release")

    async def _wait_as_backordered(self, why: str) -> None:
        self._backordered = True
        self._note("backordered", why)
        await self._publish("stock: support retries once it arrives")
        # A retry may arrive while the publish above is in flight: consume it only after waiting.
        await workflow.wait_condition(
            lambda: self._retry_requested or self._cancel_reason is not None
        )
        self._backordered = False

    def _start_shipment(self, allocated: AllocatedShipment) -> None:
        order = self._state.order
        service = choose_carrier_service(
            order.priority,
            allocated.distance_km,
            order.delivery_method,
            from_pickup_store=allocated.node_id == order.pickup_node_id,
        )
        shipment = Shipment(
            shipment_id=allocated.shipment_id,
            node_id=allocated.node_id,
            node_type=allocated.node_type,
            lines=allocated.lines,
            carrier=service.carrier,
            service=service.service,
        )
        self._state.shipments.append(shipment)
        self._slas[shipment.shipment_id] = allocated.sla
        if self._cancel_reason is not None:
            self._moves[shipment.shipment_id] = ShipmentMove.cancelled_with_order(
                self._cancel_reason
            )
        self._tasks.append(asyncio.create_task(self._fulfil(shipment)))

    # ---------------------------------------------------------------- one shipment
    async def _fulfil(self, shipment: Shipment) -> None:
        sla = self._slas[shipment.shipment_id]
        try:
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
            try:
                await self._label_and_dispatch(shipment)
            except ActivityError as exc:
                self._moves.setdefault(shipment.shipment_id, ShipmentMove.label_failed(_cause(exc)))
                await self._move_away(shipment)
            await self._await_shipped(shipment, sla)
        except _ShipmentMoved:
            return

    async def _release_to_node(self, shipment: Shipment, sla: NodeSla) -> None:
        order = self._state.order
        await self._compensate_if_moved(shipment)
        try:
            await workflow.execute_activity(
                ActivityName.RELEASE_TO_NODE,
                NodeReleaseInput(
                    order_id=order.order_id,
                    shipment_id=shipment.shipment_id,
                    node_id=shipment.node_id,
                    lines=shipment.lines,
                    ship_to=order.ship_to,
                    delivery_method=order.delivery_method,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(seconds=sla.accept_seconds),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
        except ActivityError as exc:
            refused = isinstance(exc.cause, ApplicationError) and exc.cause.non_retryable
            self._moves.setdefault(
                shipment.shipment_id, ShipmentMove.release_failed(refused, _cause(exc))
            )
            await self._move_away(shipment)
        shipment.status = ShipmentStatus.RELEASED
        self._note("released", f"{shipment.shipment_id} released to {shipment.node_id}")
        await self._publish(f"{shipment.node_id} to accept {shipment.shipment_id}")

    async def _node_step(
        self,
        shipment: Shipment,
        expected: NodeEventType,
        deadline_seconds: float,
        reached: ShipmentStatus,
    ) -> bool:
        """Wait for the node's next event under its SLA. False when the shipment moved away."""
        sid = shipment.shipment_id
        try:
            await workflow.wait_condition(
                lambda: (
                    expected in self._events.get(sid, {})
                    or NodeEventType.REJECTED in self._events.get(sid, {})
                    or sid in self._moves
                ),
                timeout=timedelta(seconds=deadline_seconds),
            )
        except TimeoutError:
            self._moves.setdefault(
                sid, ShipmentMove.missed_sla(shipment.node_id, expected, deadline_seconds)
            )
        rejection = self._events.get(sid, {}).get(NodeEventType.REJECTED)
        if rejection is not None and sid not in self._moves:
            self._moves[sid] = ShipmentMove.rejected_by_node(shipment.node_id, rejection.reason)
        if sid in self._moves:
            await self._move_away(shipment)
            return False
        shipment.status = reached
        self._note(str(expected), f"{shipment.shipment_id} {expected} by {shipment.node_id}")
        await self._publish(self._next_wait(shipment))
        return True

    def _next_wait(self, shipment: Shipment) -> str:
        if shipment.status == ShipmentStatus.ACCEPTED:
            return f"{shipment.node_id} to pick {shipment.shipment_id}"
        return f"carrier label for {shipment.shipment_id}"

    async def _label_and_dispatch(self, shipment: Shipment) -> None:
        order = self._state.order
        await self._compensate_if_moved(shipment)
        label = await self._label_for(shipment)
        shipment.status = ShipmentStatus.LABELLED
        shipment.tracking_number = label.tracking_number
        shipment.label_id = label.label_id
        self._note("labelled", f"{shipment.shipment_id}: {label.carrier} {label.tracking_number}")
        await self._compensate_if_moved(shipment)
        await workflow.execute_activity(
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
        await self._publish(f"{shipment.node_id} to ship {shipment.shipment_id}")

    async def _label_for(self, shipment: Shipment) -> BuyLabelResult:
        service = CarrierService(carrier=shipment.carrier or "", service=shipment.service or "")
        if not service.needs_label:
            code = collection_code(shipment.shipment_id)
            return BuyLabelResult(label_id=code, tracking_number=code, **service.model_dump())
        order = self._state.order
        return await workflow.execute_activity(
            ActivityName.BUY_LABEL,
            BuyLabelInput(
                order_id=order.order_id,
                shipment_id=shipment.shipment_id,
                node_id=shipment.node_id,
                carrier=service.carrier,
                service=service.service,
                ship_to=order.ship_to,
                units=sum(line.quantity for line in shipment.lines),
            ),
            result_type=BuyLabelResult,
            **CARRIER_AND_DISPATCH,
        )

    async def _await_shipped(self, shipment: Shipment, sla: NodeSla) -> None:
        sid = shipment.shipment_id

        def shipped_or_moved() -> bool:
            return NodeEventType.SHIPPED in self._events.get(sid, {}) or sid in self._moves

        try:
            await workflow.wait_condition(
                shipped_or_moved, timeout=timedelta(seconds=sla.ship_seconds)
            )
        except TimeoutError:
            # The parcel is picked and labelled: moving it now costs more than chasing the node.
            self._note("late", f"{shipment.node_id} missed its ship SLA for {sid}; still waiting")
            await self._publish(f"{shipment.node_id} to ship {sid} (late)")
            await workflow.wait_condition(shipped_or_moved)
        if NodeEventType.SHIPPED not in self._events.get(sid, {}):
            await self._compensate_if_moved(shipment)  # a parcel that left stays shipped
        await workflow.execute_local_activity(
            ActivityName.FULFIL_RESERVATIONS,
            FulfilReservationsInput(order_id=self._state.order.order_id, shipment_id=sid),
            **LEDGER,
        )
        shipped = self._events[sid][NodeEventType.SHIPPED]
        shipment.status = ShipmentStatus.SHIPPED
        shipment.tracking_number = shipped.tracking_number or shipment.tracking_number
        self._note(
            "shipped", f"{sid} shipped from {shipment.node_id}, tracking {shipment.tracking_number}"
        )
        await self._refresh_status()

    async def _compensate_if_moved(self, shipment: Shipment) -> None:
        if shipment.shipment_id in self._moves:
            await self._move_away(shipment)

    async def _move_away(self, shipment: Shipment) -> None:
        """Compensate one shipment: cancel at its node, release its stock, source its lines again."""
        move = self._moves[shipment.shipment_id]
        order_id = self._state.order.order_id
        if move.cancels_at_node:
            await self._cancel_at_node(shipment, move.reason)
        await workflow.execute_local_activity(
            ActivityName.RELEASE_RESERVATIONS,
            ReleaseReservationsInput(
                order_id=order_id,
                shipment_ids=[shipment.shipment_id],
                incident=self._incident(shipment, move),
            ),
            **LEDGER,
        )
        shipment.status = move.status
        shipment.reason = move.reason
        self._note(str(move.status).lower(), f"{shipment.shipment_id}: {move.reason}")
        if move.source_again:
            if shipment.node_id not in self._state.excluded_nodes:
                self._state.excluded_nodes.append(shipment.node_id)
            self._unallocated.extend(shipment.lines)
            self._note(
                "reallocating",
                f"lines {[ln.line_no for ln in shipment.lines]} "
                f"sourced again without {shipment.node_id}",
            )
        await self._refresh_status()
        raise _ShipmentMoved()

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

    async def _cancel_at_node(self, shipment: Shipment, reason: str) -> None:
        try:
            await workflow.execute_activity(
                ActivityName.CANCEL_AT_NODE,
                NodeCancelInput(
                    order_id=self._state.order.order_id,
                    shipment_id=shipment.shipment_id,
                    node_id=shipment.node_id,
                    reason=reason,
                ),
                **NODE_CANCEL,
            )
        except ActivityError as exc:
            self._note(
                "attention",
                f"could not cancel {shipment.shipment_id} at "
                f"{shipment.node_id}: {_cause(exc)}; follow up with the node",
            )

    # ---------------------------------------------------------------- cancellation
    async def _settle_cancellation(self) -> None:
        """Every open shipment compensates itself; then release whatever is left."""
        await workflow.wait_condition(
            lambda: not any(s.status in OPEN_SHIPMENT_STATUSES for s in self._state.shipments)
        )
        await workflow.execute_local_activity(
            ActivityName.RELEASE_RESERVATIONS,
            ReleaseReservationsInput(order_id=self._state.order.order_id),
            **LEDGER,
        )
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
        if decision.note is not None:
            self._note("ignored", decision.note)
        if shipment is None or not decision.accepted:
            return
        self._events.setdefault(event.shipment_id, seen)[event.event] = event
        if event.event == NodeEventType.DELIVERED:
            shipment.status = ShipmentStatus.DELIVERED
            self._note("delivered", f"{event.shipment_id} delivered")

    @workflow.update(name=OrderUpdate.CANCEL)
    async def cancel(self, request: CancelInput) -> CancelResult:
        self._request_cancel(request.reason)
        # Return once the read model says so, so support sees what they just did.
        await workflow.wait_condition(lambda: self._cancellation_settled)
        return CancelResult(order_id=self._state.order.order_id, status=self._state.status)

    def _request_cancel(self, reason: str) -> None:
        self._cancel_reason = reason
        for shipment in self._state.shipments:
            if shipment.status in OPEN_SHIPMENT_STATUSES:
                self._moves.setdefault(
                    shipment.shipment_id, ShipmentMove.cancelled_with_order(reason)
                )

    @cancel.validator
    def _validate_cancel(self, request: CancelInput) -> None:
        refusal = cancel_refusal(
            self._state.status,
            self._state.shipments,
            cancel_in_progress=self._cancel_reason is not None,
        )
        if refusal:
            raise ApplicationError(refusal, type="CancelRefused", non_retryable=True)

    @workflow.update(name=OrderUpdate.RETRY)
    async def retry(self, request: RetryInput) -> RetryResult:
        rounds = self._allocation_rounds
        self._note("retry", request.reason)
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
        moving = movable_shipments(self._state.shipments, request.node_id)
        for shipment in moving:
            self._moves.setdefault(
                shipment.shipment_id, ShipmentMove.moved_by_support(request.reason)
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
        )
        if refusal:
            raise ApplicationError(refusal, type="ReallocateRefused", non_retryable=True)

    @workflow.query(name=OrderQuery.STATE)
    def state(self) -> OrderState:
        return self._state

    # ---------------------------------------------------------------- bookkeeping
    def _note(self, event: str, detail: str) -> None:
        self._state.timeline.append(TimelineEntry(at=workflow.now(), event=event, detail=detail))

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
        if self._unallocated:
            return "stock reservation for moved lines"
        open_ = [s for s in self._state.shipments if s.status in OPEN_SHIPMENT_STATUSES]
        return "; ".join(f"{s.shipment_id} at {s.node_id}: {s.status}" for s in open_) or "-"

    async def _publish(self, waiting_for: str) -> None:
        """Make the state visible: search attributes, UI details, and the read model."""
        state = self._state
        self._derive_status()
        state.waiting_for = waiting_for
        state.version += 1
        indexed = (str(state.status), state.fulfilment_nodes())
        if indexed != self._indexed:
            workflow.upsert_search_attributes(
                [sa.ORDER_STATUS.value_set(indexed[0]), sa.FULFILLMENT_NODES.value_set(indexed[1])]
            )
            self._indexed = indexed
        workflow.set_current_details(
            f"**{state.status}** - waiting for {waiting_for}\n\n"
            f"shipments: {', '.join(f'{s.shipment_id}@{s.node_id}={s.status}' for s in state.shipments) or 'none'}"
        )
        await workflow.execute_local_activity(
            ActivityName.PROJECT_ORDER,
            # A snapshot: a retry of this activity must not carry later changes.
            ProjectOrderInput(document=state.model_dump(mode="json")),
            **LEDGER,
        )

    def _derive_status(self) -> None:
        if self._cancel_reason is None:
            self._state.status = derive_status(
                self._state.status,
                self._state.shipments,
                len(self._unallocated),
                backordered=self._backordered,
            )

    def _result(self) -> OrderWorkflowResult:
        return OrderWorkflowResult(
            order_id=self._state.order.order_id,
            status=self._state.status,
            shipments=self._state.shipments,
        )


class _ShipmentMoved(Exception):
    """Unwinds a shipment's coroutine once it has compensated; never leaves the workflow."""


def _cause(exc: ActivityError) -> str:
    cause = exc.cause
    return str(cause) if cause is not None else str(exc)
