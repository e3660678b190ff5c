"""Ledger activities: reserve, release and fulfil stock; project the order read model.

Synchronous on purpose: they run on the worker's thread pool and never block its event loop.
"""

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity

from activities.models import (
    AllocatedShipment,
    AllocateInput,
    AllocateResult,
    FulfilReservationsInput,
    FulfilReservationsResult,
    ProjectOrderInput,
    ProjectOrderResult,
    ReleaseReservationsInput,
    ReleaseReservationsResult,
)
from activities.sourcing_adapter import ChosenPlan, choose_sources
from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint, distance_km
from domain.orders import OrderLine
from domain.sla import NodeSla, SlaPolicy
from ledger import holds, node_health, orders_view, stock
from ledger.availability import channel_pool
from ledger.db import transaction
from ledger.errors import InsufficientStock
from ledger.tables import Node, Reservation

# Another order can take the stock between reading availability and reserving it; re-plan on
# fresh numbers a few times before giving the race back to Temporal's retry.
PLANNING_ROUNDS = 5


class LedgerActivities:
    def __init__(self, engine: Engine, sla_policy: SlaPolicy) -> None:
        self._engine = engine
        self._sla_policy = sla_policy

    @activity.defn(name="allocate_stock")
    def allocate_stock(self, request: AllocateInput) -> AllocateResult:
        """Choose node(s) and reserve every line atomically, or report the order backordered.
        Idempotent: if a previous attempt committed, its reservations are returned as they are."""
        for _ in range(PLANNING_ROUNDS):
            try:
                with transaction(self._engine) as session:
                    wanted = {ln.line_no for ln in request.lines}
                    held = [
                        r
                        for r in stock.active_reservations(session, request.order_id)
                        if r.line_no in wanted
                    ]
                    if held:
                        return self._result_from(
                            session, held, request, "allocation already recorded"
                        )
                    if request.hold_id:
                        converted = self._convert_hold(session, request)
                        if converted is not None:
                            return converted
                    skus = {ln.sku for ln in request.lines}
                    pool = channel_pool(session, request.channel)
                    candidates = stock.candidate_nodes(session, skus, pool)
                    try:
                        plan = choose_sources(
                            request, candidates, request.priority, datetime.now(UTC)
                        )
                    except NoSourceAvailable as exc:
                        # Returned inside the transaction: a hold given back above still commits.
                        return AllocateResult(explanation=str(exc), backordered=True)
                    stock.reserve(session, _reservation_requests(request, plan))
                    reserved = stock.active_reservations(session, request.order_id)
                    mine = [r for r in reserved if r.line_no in wanted]
                    return self._result_from(session, mine, request, plan.explanation)
            except InsufficientStock as exc:
                activity.logger.info("re-planning %s: %s", request.order_id, exc)
        raise InsufficientStock(node_id="*", sku="*", quantity=0)

    def _convert_hold(self, session: Session, request: AllocateInput) -> AllocateResult | None:
        """Reserve exactly what checkout held, if the hold is still good and matches the order;
        otherwise give the hold back and let sourcing start afresh."""
        hold_id = request.hold_id or ""
        lines = holds.hold_lines(session, hold_id)
        ordered = {(ln.line_no, ln.sku, ln.quantity) for ln in request.lines}
        if {(hl.line_no, hl.sku, hl.quantity) for hl in lines} != ordered:
            holds.release_hold(session, hold_id)
            return None
        nodes = sorted({hl.node_id for hl in lines})
        shipment_ids = {
            node: f"{request.order_id}-S{request.first_shipment_seq + i}"
            for i, node in enumerate(nodes)
        }
        try:
            holds.convert_hold(session, hold_id, request.order_id, shipment_ids, datetime.now(UTC))
        except holds.HoldNotActive as exc:
            activity.logger.info("hold not used for %s: %s", request.order_id, exc)
            return None
        reserved = stock.active_reservations(session, request.order_id)
        return self._result_from(
            session, reserved, request, f"converted checkout hold {hold_id} at {', '.join(nodes)}"
        )

    def _result_from(
        self, session: Session, held: list[Reservation], request: AllocateInput, explanation: str
    ) -> AllocateResult:
        by_shipment: dict[str, list[Reservation]] = {}
        for reservation in held:
            by_shipment.setdefault(reservation.shipment_id, []).append(reservation)
        shipments = []
        for shipment_id, rows in sorted(by_shipment.items()):
            node = session.get(Node, rows[0].node_id)
            shipments.append(
                AllocatedShipment(
                    shipment_id=shipment_id,
                    node_id=node.node_id,
                    node_type=node.node_type,
                    lines=[
                        OrderLine(line_no=r.line_no, sku=r.sku, quantity=r.quantity) for r in rows
                    ],
                    distance_km=round(distance_km(_location(node), request.destination), 1),
                    sla=self._sla_for(node),
                )
            )
        return AllocateResult(shipments=shipments, explanation=explanation)

    def _sla_for(self, node: Node) -> NodeSla:
        default = self._sla_policy.for_node_type(node.node_type)
        return NodeSla(
            accept_seconds=node.accept_sla_seconds or default.accept_seconds,
            pick_seconds=node.pick_sla_seconds or default.pick_seconds,
            ship_seconds=node.ship_sla_seconds or default.ship_seconds,
        )

    @activity.defn(name="release_reservations")
    def release_reservations(self, request: ReleaseReservationsInput) -> ReleaseReservationsResult:
        with transaction(self._engine) as session:
            units = stock.release(session, request.order_id, request.shipment_ids)
            if (incident := request.incident) is not None:
                node_health.record_incident(
                    session,
                    request.order_id,
                    incident.node_id,
                    incident.shipment_id,
                    incident.kind,
                    incident.reason,
                )
        return ReleaseReservationsResult(units_released=units)

    @activity.defn(name="fulfil_reservations")
    def fulfil_reservations(self, request: FulfilReservationsInput) -> FulfilReservationsResult:
        with transaction(self._engine) as session:
            units = stock.fulfil(session, request.order_id, request.shipment_id)
        return FulfilReservationsResult(units_shipped=units)

    @activity.defn(name="project_order")
    def project_order(self, request: ProjectOrderInput) -> ProjectOrderResult:
        with transaction(self._engine) as session:
            stored = orders_view.project(session, request.state)
        return ProjectOrderResult(stored=stored)


def _location(node: Node) -> GeoPoint:
    return GeoPoint(lat=node.lat, lon=node.lon)


def _reservation_requests(
    request: AllocateInput, plan: ChosenPlan
) -> list[stock.ReservationRequest]:
    requests = []
    for offset, shipment in enumerate(plan.shipments):
        shipment_id = f"{request.order_id}-S{request.first_shipment_seq + offset}"
        requests.extend(
            stock.ReservationRequest(
                order_id=request.order_id,
                shipment_id=shipment_id,
                line_no=line.line_no,
                node_id=shipment.node_id,
                sku=line.sku,
                quantity=line.quantity,
            )
            for line in shipment.lines
        )
    return requests
