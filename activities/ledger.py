"""Ledger activities: reserve, release and fulfil stock; project the order read model.

Synchronous on purpose: they run on the worker's thread pool and never block its event loop.
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity

from activities.sourcing_adapter import ChosenPlan, choose_sources
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
)
from contracts.names import ActivityName
from domain.availability import visible_to_channel
from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint, distance_km
from domain.orders import OrderLine
from domain.sla import NodeSla, SlaPolicy
from ledger import holds, node_health, orders_view, stock
from ledger.availability import channel_pool, positions_for
from ledger.db import transaction
from ledger.errors import InsufficientStock
from ledger.group_commit import GroupCommit
from ledger.tables import Node, Reservation

# Another order can take the stock between reading availability and reserving it; re-plan on
# fresh numbers a few times before giving the race back to Temporal's retry.
PLANNING_ROUNDS = 5


class LedgerActivities:
    def __init__(self, engine: Engine, sla_policy: SlaPolicy) -> None:
        self._engine = engine
        self._sla_policy = sla_policy
        # Every step of every order projects its state: many small writes, committed in groups.
        self._projections: GroupCommit[dict, bool] = GroupCommit(engine, orders_view.project)

    @activity.defn(name=ActivityName.ALLOCATE_STOCK)
    def allocate_stock(self, request: AllocateInput) -> AllocateResult:
        """Choose node(s) and reserve every line atomically, or report the order backordered.
        Idempotent: if a previous attempt committed, its reservations are returned as they are.

        Sourcing plans on a read snapshot, outside the write transaction: on SQLite that
        transaction holds the database's only write lock, and planning is the slow part. The
        reservation is a conditional update, so a plan made stale by another order fails
        there (InsufficientStock) and is made again on fresh numbers."""
        if request.hold_id:
            return self._allocate_with_hold(request)
        for _ in range(PLANNING_ROUNDS):
            with Session(self._engine) as reading:
                if held := _held_for(reading, request):
                    return self._result(
                        partial(reading.get, Node), held, request, "allocation already recorded"
                    )
                try:
                    plan = self._plan(reading, request)
                except NoSourceAvailable as exc:
                    return AllocateResult(explanation=str(exc), backordered=True)
                nodes = {s.node_id: reading.get(Node, s.node_id) for s in plan.shipments}
            try:
                with transaction(self._engine) as session:
                    if held := _held_for(session, request):  # an earlier attempt got there first
                        return self._result(
                            partial(session.get, Node), held, request, "allocation already recorded"
                        )
                    wanted = _reservation_requests(request, plan)
                    _still_visible(session, request.channel, wanted)
                    stock.reserve(session, wanted)
                return self._result(nodes.get, wanted, request, plan.explanation)
            except InsufficientStock as exc:
                activity.logger.info("re-planning %s: %s", request.order_id, exc)
        raise InsufficientStock(node_id="*", sku="*", quantity=0)

    def _allocate_with_hold(self, request: AllocateInput) -> AllocateResult:
        """The checkout hold is converted, or given back, in the same transaction as the
        reservation, so sourcing sees the units it gave back."""
        for _ in range(PLANNING_ROUNDS):
            try:
                with transaction(self._engine) as session:
                    if held := _held_for(session, request):
                        return self._result(
                            partial(session.get, Node), held, request, "allocation already recorded"
                        )
                    converted = self._convert_hold(session, request)
                    if converted is not None:
                        return converted
                    try:
                        plan = self._plan(session, request)
                    except NoSourceAvailable as exc:
                        # Returned inside the transaction: the hold given back above commits.
                        return AllocateResult(explanation=str(exc), backordered=True)
                    wanted = _reservation_requests(request, plan)
                    stock.reserve(session, wanted)
                    return self._result(
                        partial(session.get, Node), wanted, request, plan.explanation
                    )
            except InsufficientStock as exc:
                activity.logger.info("re-planning %s: %s", request.order_id, exc)
        raise InsufficientStock(node_id="*", sku="*", quantity=0)

    def _plan(self, session: Session, request: AllocateInput) -> ChosenPlan:
        skus = {ln.sku for ln in request.lines}
        candidates = stock.candidate_nodes(session, skus, channel_pool(session, request.channel))
        return choose_sources(request, candidates, request.priority, datetime.now(UTC))

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
        return self._result(
            partial(session.get, Node),
            reserved,
            request,
            f"converted checkout hold {hold_id} at {', '.join(nodes)}",
        )

    def _result(
        self,
        node_of: Callable[[str], Node | None],
        rows: Sequence[Reservation | stock.ReservationRequest],
        request: AllocateInput,
        explanation: str,
    ) -> AllocateResult:
        by_shipment: dict[str, list[Reservation | stock.ReservationRequest]] = {}
        for row in sorted(rows, key=lambda r: (r.shipment_id, r.line_no)):
            by_shipment.setdefault(row.shipment_id, []).append(row)
        shipments = []
        for shipment_id, lines in sorted(by_shipment.items()):
            node = node_of(lines[0].node_id)
            assert node is not None  # reservations reference their node
            shipments.append(
                AllocatedShipment(
                    shipment_id=shipment_id,
                    node_id=node.node_id,
                    node_type=node.node_type,
                    lines=[
                        OrderLine(line_no=r.line_no, sku=r.sku, quantity=r.quantity) for r in lines
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

    @activity.defn(name=ActivityName.RELEASE_RESERVATIONS)
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

    @activity.defn(name=ActivityName.FULFIL_RESERVATIONS)
    def fulfil_reservations(self, request: FulfilReservationsInput) -> FulfilReservationsResult:
        with transaction(self._engine) as session:
            units = stock.fulfil(session, request.order_id, request.shipment_id)
        return FulfilReservationsResult(units_shipped=units)

    @activity.defn(name=ActivityName.PROJECT_ORDER)
    def project_order(self, request: ProjectOrderInput) -> ProjectOrderResult:
        stored = self._projections.submit(request.document)
        return ProjectOrderResult(stored=stored)


def _still_visible(session: Session, channel: str, wanted: list[stock.ReservationRequest]) -> None:
    """The plan, made on a snapshot, checked again inside the write transaction for what the
    reservation's conditional update does not check: the channel pool's share and cap, and a
    node taken out of service meanwhile. InsufficientStock sends it back to be made again."""
    needed: dict[tuple[str, str], int] = {}
    for r in wanted:
        needed[(r.node_id, r.sku)] = needed.get((r.node_id, r.sku), 0) + r.quantity
    pool = channel_pool(session, channel)
    now = {
        (f.node_id, f.sku): f
        for f in positions_for(session, {sku for _, sku in needed}, {node for node, _ in needed})
    }
    for (node_id, sku), quantity in needed.items():
        figures = now.get((node_id, sku))
        if figures is None or visible_to_channel(figures, pool) < quantity:
            raise InsufficientStock(node_id=node_id, sku=sku, quantity=quantity)


def _held_for(session: Session, request: AllocateInput) -> list[Reservation]:
    """This order's active reservations for these lines: what an earlier attempt reserved."""
    wanted = {ln.line_no for ln in request.lines}
    return [r for r in stock.active_reservations(session, request.order_id) if r.line_no in wanted]


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
