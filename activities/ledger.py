"""Ledger activities: reserve, release and fulfil stock; project the order read model.

Temporal adapters around services.allocation: each maps its contracts payload to the service's
own types and back. Synchronous on purpose: they run on the worker's thread pool and never
block its event loop.
"""

from sqlalchemy import Engine
from temporalio import activity

from contracts.activities import (
    AllocatedShipment,
    AllocateInput,
    AllocateResult,
    FulfilReservationsInput,
    FulfilReservationsResult,
    ProjectOrderInput,
    ProjectOrderResult,
    ReleaseReservationsInput,
    ReleaseReservationsResult,
    ShippedAfterMoveInput,
    ShippedAfterMoveResult,
)
from contracts.activities import NodeIncident as IncidentPayload
from contracts.names import ActivityName
from domain.lifecycle import IncidentKind
from domain.sla import SlaPolicy
from ledger import orders_view
from ledger.group_commit import GroupCommit
from services import allocation, shipments
from services.allocation import DAY_SECONDS, Allocation, AllocationRequest, NodeIncident


class LedgerActivities:
    def __init__(
        self,
        engine: Engine,
        sla_policy: SlaPolicy,
        exclusion_forget_seconds: float | None = None,
        release_day_seconds: float = DAY_SECONDS,
    ) -> None:
        self._engine = engine
        self._sla_policy = sla_policy
        # The length of a day for a requested date's release timer (Settings.release_day_seconds).
        self._release_day_seconds = release_day_seconds
        # Handed to the order with each allocation result (AllocateResult): see its field.
        self._exclusion_forget_seconds = exclusion_forget_seconds
        # Every step of every order projects its state: many small writes, committed in groups.
        self._projections: GroupCommit[dict, bool] = GroupCommit(engine, orders_view.project)

    @activity.defn(name=ActivityName.ALLOCATE_STOCK)
    def allocate_stock(self, request: AllocateInput) -> AllocateResult:
        """Choose node(s) and reserve every line atomically, or report the order backordered
        (services.allocation.allocate). InsufficientStock after its planning rounds is left
        to Temporal's retry."""
        done = allocation.allocate(
            self._engine,
            self._sla_policy,
            _allocation_request(request),
            activity.logger,
            release_day_seconds=self._release_day_seconds,
        )
        return _allocate_result(done, self._exclusion_forget_seconds)

    @activity.defn(name=ActivityName.RELEASE_RESERVATIONS)
    def release_reservations(self, request: ReleaseReservationsInput) -> ReleaseReservationsResult:
        units = allocation.release_reservations(
            self._engine, request.order_id, request.shipment_ids, _incident(request.incident)
        )
        return ReleaseReservationsResult(units_released=units)

    @activity.defn(name=ActivityName.FULFIL_RESERVATIONS)
    def fulfil_reservations(self, request: FulfilReservationsInput) -> FulfilReservationsResult:
        units = allocation.fulfil_reservations(
            self._engine,
            request.order_id,
            request.shipment_id,
            request.shipped_at,
            node_id=request.node_id,
            ship_by=request.ship_by,
        )
        return FulfilReservationsResult(units_shipped=units)

    @activity.defn(name=ActivityName.RECORD_SHIPPED_AFTER_MOVE)
    def record_shipped_after_move(self, request: ShippedAfterMoveInput) -> ShippedAfterMoveResult:
        units = shipments.record_shipped_after_move(
            self._engine, request.order_id, request.shipment_id, request.shipped_at
        )
        return ShippedAfterMoveResult(units=units)

    @activity.defn(name=ActivityName.PROJECT_ORDER)
    def project_order(self, request: ProjectOrderInput) -> ProjectOrderResult:
        # The run that projects it: a reset's run replaces an older run's document (audit L8).
        run = activity.info().workflow_run_id
        stored = self._projections.submit({**request.document, orders_view.RUN_ID: run})
        return ProjectOrderResult(stored=stored)


def _allocation_request(request: AllocateInput) -> AllocationRequest:
    return AllocationRequest(
        order_id=request.order_id,
        lines=request.lines,
        destination=request.destination,
        delivery_method=request.delivery_method,
        channel=request.channel,
        priority=request.priority,
        hold_id=request.hold_id,
        pickup_node_id=request.pickup_node_id,
        excluded_nodes=request.excluded_nodes,
        first_shipment_seq=request.first_shipment_seq,
        delivery_option=request.delivery_option,
        promised_date=request.promised_date,
        partial=request.partial,
        requested_not_before=request.requested_not_before,
        divide_lines=request.divide_lines,
    )


def _incident(incident: IncidentPayload | None) -> NodeIncident | None:
    if incident is None:
        return None
    return NodeIncident(
        node_id=incident.node_id,
        shipment_id=incident.shipment_id,
        kind=IncidentKind(incident.kind),
        reason=incident.reason,
    )


def _allocate_result(done: Allocation, exclusion_forget_seconds: float | None) -> AllocateResult:
    # The service's values are already valid (its lines and SLAs are the domain's models):
    # constructed, not validated again, on the order's hot path.
    return AllocateResult.model_construct(
        shipments=[
            AllocatedShipment.model_construct(
                shipment_id=s.shipment_id,
                node_id=s.node_id,
                node_type=s.node_type,
                lines=s.lines,
                distance_km=s.distance_km,
                sla=s.sla,
                carrier=s.carrier,
                service=s.service,
                ship_by=s.ship_by,
                promised_date=s.promised_date,
                release_after_seconds=s.release_after_seconds,
            )
            for s in done.shipments
        ],
        explanation=done.explanation,
        backordered=done.backordered,
        promised_date=done.promised_date,
        promise_at_risk=done.promise_at_risk,
        stock_seen_movement=done.stock_seen_movement,
        exclusion_forget_seconds=exclusion_forget_seconds,
        unfilled_lines=done.unfilled_lines,
    )
