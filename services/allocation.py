"""Allocation: choose node(s) for an order and reserve every line, convert a checkout hold, and
release or fulfil the order's reservations.

This is the order's hot path: every order allocates at least once, each call a database
transaction or two. Its types are plain dataclasses (nothing validated twice), and each unit of
work makes exactly the reads and writes it needs.

Idempotent: an allocation a previous attempt committed is returned as it is. Races with other
orders end in `InsufficientStock` after PLANNING_ROUNDS plans; the caller retries (Temporal does,
for the activity) and nothing was changed.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from domain.availability import visible_to_channel
from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint, distance_km
from domain.lifecycle import IncidentKind
from domain.network import CandidateNode
from domain.node_health import late_shipment_reason
from domain.orders import DeliveryMethod, DeliveryOptionCode, OrderLine
from domain.sla import NodeSla, SlaPolicy
from ledger import holds, node_health, stock
from ledger.availability import channel_pool, lock_positions, positions_for
from ledger.db import transaction
from ledger.errors import InsufficientStock
from ledger.order_turns import take_allocation_turn
from ledger.tables import CheckoutHold, Node, Reservation
from services.sourcing_inputs import with_calendars
from services.sourcing_policy import policy_for, ruleset_for
from sourcing import ChosenPlan, choose_sources
from sourcing.allocation import ChosenShipment, date_shipments, sourcing_order
from sourcing.model import (
    NodeProfile,
    Ruleset,
    SourcingPolicy,
)
from sourcing.optimizer import DEFAULT_POLICY
from sourcing.splits import merged_lines

log = logging.getLogger(__name__)
# Where re-planning and unused holds are logged: this module's logger, or the caller's (an
# activity passes Temporal's activity.logger, which carries the workflow and activity ids).
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]

# Another order can take the stock between reading availability and reserving it; re-plan on
# fresh numbers a few times before giving the race back to the caller's retry.
PLANNING_ROUNDS = 5
# A day, in seconds: what a requested date's release timer counts in (tests shorten it).
DAY_SECONDS = 24 * 3600.0
ALREADY_RECORDED = "allocation already recorded"


@dataclass(frozen=True, slots=True)
class AllocationRequest:
    order_id: str
    lines: list[OrderLine]
    destination: GeoPoint
    delivery_method: DeliveryMethod
    channel: str = ""
    priority: int = 5
    hold_id: str | None = None
    pickup_node_id: str | None = None
    excluded_nodes: list[str] = field(default_factory=list)
    first_shipment_seq: int = 1
    delivery_option: DeliveryOptionCode | None = None
    promised_date: date | None = None
    # Ship-partial: reserve what can go now, report the rest (Allocation.unfilled_lines).
    partial: bool = False
    # The buyer's "not before": no shipment promised earlier, none released to its node so early
    # that it arrives before it.
    requested_not_before: date | None = None
    # A line no node holds whole may be divided between nodes (AllocateInput.divide_lines).
    divide_lines: bool = True


@dataclass(frozen=True, slots=True)
class ReservedShipment:
    shipment_id: str
    node_id: str
    node_type: str
    lines: list[OrderLine]
    distance_km: float
    sla: NodeSla
    carrier: str | None = None
    service: str | None = None
    ship_by: date | None = None
    promised_date: date | None = None
    release_after_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    explanation: str
    shipments: list[ReservedShipment] = field(default_factory=list)
    backordered: bool = False
    promised_date: date | None = None
    # Arrives later than the order's promised date (the explanation says by when).
    promise_at_risk: bool = False
    # A partial allocation's lines no node serves now: they stay backordered.
    unfilled_lines: list[OrderLine] = field(default_factory=list)
    # The newest stock movement id before this allocation read the stock (see AllocateResult).
    stock_seen_movement: int | None = None


@dataclass(frozen=True, slots=True)
class NodeIncident:
    """The node failed a shipment (rejected it or missed an SLA): counts toward its health."""

    node_id: str
    shipment_id: str
    kind: IncidentKind
    reason: str


def allocate(
    engine: Engine,
    sla_policy: SlaPolicy,
    request: AllocationRequest,
    logger: Log = log,
    release_day_seconds: float = DAY_SECONDS,
) -> Allocation:
    """Choose node(s) and reserve every line atomically, or report the order backordered.

    Sourcing plans on a read snapshot, outside the write transaction: on SQLite that
    transaction holds the database's only write lock, and planning is the slow part. The
    reservation is a conditional update, so a plan made stale by another order fails
    there (InsufficientStock) and is made again on fresh numbers."""
    # Pieces of one line sourced again together (both moved away) are one line to source.
    request = replace(request, lines=merged_lines(request.lines))
    # Taken before planning reads the stock: a movement after it may be news to the order.
    with Session(engine) as reading:
        seen = stock.last_movement_id(reading)
    allocated = replace(_allocate(engine, sla_policy, request, logger), stock_seen_movement=seen)
    if request.requested_not_before is None or allocated.backordered:
        return allocated
    return hold_until_release_day(
        allocated, request.requested_not_before, datetime.now(UTC), release_day_seconds
    )


def hold_until_release_day(
    allocated: Allocation, not_before: date, now: datetime, day_seconds: float = DAY_SECONDS
) -> Allocation:
    """A requested "not before" date: each shipment that would arrive earlier has its whole plan
    moved later by the days it is early — ship-by and promised dates alike — and waits that long
    before its release to the node (in `day_seconds` days). Moving the plan, not only its
    transit, keeps the node's own lead from release to hand-over (processing days, the cut-off
    the release meets today). The stock is reserved now (the caller's allocation); the node
    sees the order on its release day. Not checked here: that the moved days are working days
    at the node (the node's calendar is not in the allocation)."""
    shipments = []
    for s in allocated.shipments:
        if s.promised_date is None or s.promised_date >= not_before:
            shipments.append(s)
            continue
        early = not_before - s.promised_date
        wait = early.total_seconds() * day_seconds / DAY_SECONDS
        shipments.append(
            replace(
                s,
                ship_by=(s.ship_by or s.promised_date) + early,
                promised_date=not_before,
                release_after_seconds=round(wait, 3),
            )
        )
    arrives = max((s.promised_date for s in shipments if s.promised_date), default=None)
    explanation = allocated.explanation
    if arrives is not None and arrives != allocated.promised_date:
        explanation = f"{explanation}; held for the requested date: arrives {arrives}"
    return replace(allocated, shipments=shipments, promised_date=arrives, explanation=explanation)


def _allocate(
    engine: Engine, sla_policy: SlaPolicy, request: AllocationRequest, logger: Log
) -> Allocation:
    if request.hold_id:
        return _allocate_with_hold(engine, sla_policy, request, logger)
    for _ in range(PLANNING_ROUNDS):
        with Session(engine) as reading:
            if held := _held_for(reading, request):
                return _result(
                    sla_policy,
                    partial(reading.get, Node),
                    held,
                    request,
                    ALREADY_RECORDED,
                    _date_reserved(reading, request, held),
                )
            try:
                plan = _plan(reading, request)
            except NoSourceAvailable as exc:
                return Allocation(explanation=str(exc), backordered=True)
            nodes = {s.node_id: reading.get(Node, s.node_id) for s in plan.shipments}
        try:
            with transaction(engine) as session:
                take_allocation_turn(session, request.order_id)
                if held := _held_for(session, request):  # an earlier attempt got there first
                    return _result(
                        sla_policy,
                        partial(session.get, Node),
                        held,
                        request,
                        ALREADY_RECORDED,
                        _date_reserved(session, request, held),
                    )
                wanted = _reservation_requests(request, plan)
                _still_visible(session, request.channel, wanted)
                stock.reserve(session, wanted)
            dates = _plan_dates(request, plan)
            return _result(sla_policy, nodes.get, wanted, request, plan.explanation, dates)
        except InsufficientStock as exc:
            logger.info("re-planning %s: %s", request.order_id, exc)
    raise InsufficientStock(node_id="*", sku="*", quantity=0)


def _allocate_with_hold(
    engine: Engine, sla_policy: SlaPolicy, request: AllocationRequest, logger: Log
) -> Allocation:
    """The checkout hold is converted, or given back, in the same transaction as the
    reservation, so sourcing sees the units it gave back."""
    for _ in range(PLANNING_ROUNDS):
        try:
            with transaction(engine) as session:
                take_allocation_turn(session, request.order_id)
                node_of = partial(session.get, Node)
                if held := _held_for(session, request):
                    dates = _date_reserved(session, request, held)
                    return _result(sla_policy, node_of, held, request, ALREADY_RECORDED, dates)
                converted = _convert_hold(session, sla_policy, request, logger)
                if converted is not None:
                    return converted
                try:
                    plan = _plan(session, request)
                except NoSourceAvailable as exc:
                    # Returned inside the transaction: the hold given back above commits.
                    return Allocation(explanation=str(exc), backordered=True)
                wanted = _reservation_requests(request, plan)
                _still_visible(session, request.channel, wanted)
                stock.reserve(session, wanted)
                dates = _plan_dates(request, plan)
                return _result(sla_policy, node_of, wanted, request, plan.explanation, dates)
        except InsufficientStock as exc:
            logger.info("re-planning %s: %s", request.order_id, exc)
    raise InsufficientStock(node_id="*", sku="*", quantity=0)


def _plan(session: Session, request: AllocationRequest) -> ChosenPlan:
    skus = {ln.sku for ln in request.lines}
    candidates = stock.candidate_nodes(session, skus, channel_pool(session, request.channel))
    profiles, now = with_calendars(session, candidates, datetime.now(UTC))
    policy = policy_for(session, request.channel)
    if not request.divide_lines:  # an order whose workflow handles lines by line number
        policy = policy.model_copy(update={"split_lines": False})
    ruleset = ruleset_for(session, request.channel)  # the channel's shipment limit, if any
    plan = plan_allocation(request, profiles, now, policy, ruleset, partial=request.partial)
    if not plan.shipments:  # a partial plan that serves nothing is a backorder, as a whole one
        raise NoSourceAvailable(lines=request.lines, excluded_nodes=request.excluded_nodes)
    return plan


def plan_allocation(
    request: AllocationRequest,
    profiles: Sequence[NodeProfile],
    now: datetime,
    policy: SourcingPolicy = DEFAULT_POLICY,
    ruleset: Ruleset | None = None,
    *,
    partial: bool = False,
) -> ChosenPlan:
    """The allocation's decision on what it read: the channel's candidates with their calendars
    (`with_calendars`), `now` on their clock, and the channel's policy. Pure; the sourcing
    benchmark calls it as allocation does. Raises NoSourceAvailable; with `partial`, returns
    the plan with its unfilled lines instead (the sourcing benchmark, a ship-partial order)."""
    return choose_sources(
        request, profiles, request.priority, now, policy, ruleset, partial=partial
    )


def _plan_dates(request: AllocationRequest, plan: ChosenPlan) -> dict[str, ChosenShipment]:
    return {
        f"{request.order_id}-S{request.first_shipment_seq + offset}": shipment
        for offset, shipment in enumerate(plan.shipments)
    }


def _date_reserved(
    session: Session,
    request: AllocationRequest,
    rows: Sequence[Reservation | stock.ReservationRequest],
) -> dict[str, ChosenShipment]:
    """Dates for reservations made without a plan in hand (a converted hold, an earlier
    attempt's), by the allocation's arithmetic on the nodes' calendars as they are now."""
    by_shipment: dict[str, list[OrderLine]] = {}
    node_of_shipment: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: (r.shipment_id, r.line_no)):
        by_shipment.setdefault(r.shipment_id, []).append(
            OrderLine(line_no=r.line_no, sku=r.sku, quantity=r.quantity)
        )
        node_of_shipment[r.shipment_id] = r.node_id
    nodes = {}
    for node_id in set(node_of_shipment.values()):
        row = session.get(Node, node_id)
        assert row is not None  # reservations reference their node
        nodes[node_id] = CandidateNode(
            row.node_id, row.node_type, _location(row), row.can_ship, row.can_pickup, row.priority
        )  # fmt: skip
    profiles, now = with_calendars(session, list(nodes.values()), datetime.now(UTC))
    profile_of = {p.node_id: p for p in profiles}
    order = sourcing_order(request, request.priority, now)
    ids = sorted(by_shipment)
    dated = date_shipments(
        order,
        [(profile_of[node_of_shipment[i]], by_shipment[i]) for i in ids],
        policy_for(session, request.channel),
    )
    return dict(zip(ids, dated, strict=True))


def _convert_hold(
    session: Session, sla_policy: SlaPolicy, request: AllocationRequest, logger: Log
) -> Allocation | None:
    """Reserve exactly what checkout held, if the hold is still good and matches the order;
    otherwise give the hold back and let sourcing start afresh. Another channel's hold is never
    touched: its id in this order converts nothing and releases nothing (an order whose
    payload predates the channel field, channel "", is not checked)."""
    hold_id = request.hold_id or ""
    hold = session.get(CheckoutHold, hold_id)
    if hold is None:
        return None
    if request.channel and hold.channel != request.channel:
        logger.warning(
            "hold %s not used for %s: it belongs to channel %s, not %s",
            hold_id, request.order_id, hold.channel, request.channel,
        )  # fmt: skip
        return None
    lines = holds.hold_lines(session, hold_id)
    ordered = {(ln.line_no, ln.sku, ln.quantity) for ln in request.lines}
    # A line the checkout divided between nodes is held as a line per node: its units add up.
    held = merged_lines(
        [OrderLine(line_no=hl.line_no, sku=hl.sku, quantity=hl.quantity) for hl in lines]
    )
    if {(hl.line_no, hl.sku, hl.quantity) for hl in held} != ordered:
        holds.release_hold(session, hold_id)
        return None
    nodes = sorted({hl.node_id for hl in lines})
    shipment_ids = {
        node: f"{request.order_id}-S{request.first_shipment_seq + i}"
        for i, node in enumerate(nodes)
    }
    now = datetime.now(UTC)
    try:
        holds.convert_hold(session, hold_id, request.order_id, shipment_ids, now)
    except holds.HoldNotActive as exc:
        logger.info("hold not used for %s: %s", request.order_id, exc)
        # Expired but not yet swept by housekeeping: its units would stay held against this
        # very order, which would then be backordered for want of them.
        holds.expire_hold(session, hold_id, now)
        return None
    reserved = stock.active_reservations(session, request.order_id)
    return _result(
        sla_policy,
        partial(session.get, Node),
        reserved,
        request,
        f"converted checkout hold {hold_id} at {', '.join(nodes)}",
        _date_reserved(session, request, reserved),
    )


def _result(
    sla_policy: SlaPolicy,
    node_of: Callable[[str], Node | None],
    rows: Sequence[Reservation | stock.ReservationRequest],
    request: AllocationRequest,
    explanation: str,
    dates: dict[str, ChosenShipment],
) -> Allocation:
    by_shipment: dict[str, list[Reservation | stock.ReservationRequest]] = {}
    for row in sorted(rows, key=lambda r: (r.shipment_id, r.line_no)):
        by_shipment.setdefault(row.shipment_id, []).append(row)
    shipments = []
    for shipment_id, lines in sorted(by_shipment.items()):
        node = node_of(lines[0].node_id)
        assert node is not None  # reservations reference their node
        dated = dates.get(shipment_id)
        carrier = dated.carrier if dated is not None else None
        shipments.append(
            ReservedShipment(
                shipment_id=shipment_id,
                node_id=node.node_id,
                node_type=node.node_type,
                lines=[OrderLine(line_no=r.line_no, sku=r.sku, quantity=r.quantity) for r in lines],
                distance_km=round(distance_km(_location(node), request.destination), 1),
                sla=sla_for(sla_policy, node),
                carrier=carrier.carrier if carrier is not None else None,
                service=carrier.service if carrier is not None else None,
                ship_by=dated.ship_by if dated is not None else None,
                promised_date=dated.promised_date if dated is not None else None,
            )
        )
    arrives = max((s.promised_date for s in shipments if s.promised_date), default=None)
    promise = request.promised_date
    at_risk = promise is not None and arrives is not None and arrives > promise
    if at_risk and "promise at risk" not in explanation:
        explanation = f"{explanation}; promise at risk: arrives {arrives}, promised {promise}"
    unfilled = _unfilled(request, rows) if request.partial else []
    if unfilled:
        waiting = ", ".join(f"line {ln.line_no} ({ln.quantity} x {ln.sku})" for ln in unfilled)
        explanation = f"{explanation}; ship-partial: {waiting} backordered"
    return Allocation(
        shipments=shipments,
        explanation=explanation,
        promised_date=arrives,
        promise_at_risk=at_risk,
        unfilled_lines=unfilled,
    )


def _unfilled(
    request: AllocationRequest, rows: Sequence[Reservation | stock.ReservationRequest]
) -> list[OrderLine]:
    """The units of each requested line the reservations do not carry: a partial allocation's
    backordered lines, from what was reserved (this attempt's or an earlier one's)."""
    reserved: dict[int, int] = {}
    for row in rows:
        reserved[row.line_no] = reserved.get(row.line_no, 0) + row.quantity
    return [
        OrderLine(
            line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity - reserved.get(ln.line_no, 0)
        )
        for ln in request.lines
        if ln.quantity > reserved.get(ln.line_no, 0)
    ]


def sla_for(sla_policy: SlaPolicy, node: Node) -> NodeSla:
    """The node's own SLA where it has one, its node type's default otherwise."""
    default = sla_policy.for_node_type(node.node_type)
    return NodeSla(
        accept_seconds=node.accept_sla_seconds or default.accept_seconds,
        pick_seconds=node.pick_sla_seconds or default.pick_seconds,
        ship_seconds=node.ship_sla_seconds or default.ship_seconds,
    )


def release_reservations(
    engine: Engine,
    order_id: str,
    shipment_ids: list[str] | None = None,
    incident: NodeIncident | None = None,
) -> int:
    """Release the order's active reservations (all, or those of these shipments) and record the
    node's incident in the same transaction, so a retry never counts it twice. Idempotent;
    returns the units released. Waits for an allocation of the order still in flight (an
    attempt the workflow gave up on), so what that attempt commits is released too."""
    with transaction(engine) as session:
        take_allocation_turn(session, order_id)
        units = stock.release(session, order_id, shipment_ids)
        if incident is not None:
            node_health.record_incident(
                session,
                order_id,
                incident.node_id,
                incident.shipment_id,
                incident.kind,
                incident.reason,
            )
    return units


def fulfil_reservations(
    engine: Engine,
    order_id: str,
    shipment_id: str,
    shipped_at: datetime | None = None,
    node_id: str | None = None,
    ship_by: date | None = None,
) -> int:
    """The shipment left its node (at `shipped_at`, the node's word; None: now): its reserved
    units leave on hand. Left after its ship-by date (its UTC date, or its date on the node's
    clock when earlier), it counts against the node's health: a LATE incident in the same
    transaction, so the units and the lateness are recorded together or not at all.
    Idempotent, the incident too (one per shipment)."""
    with transaction(engine) as session:
        units = stock.fulfil(session, order_id, shipment_id, shipped_at)
        if node_id is not None and ship_by is not None:
            node = session.get(Node, node_id)
            zone = ZoneInfo(node.timezone) if node is not None else None
            reason = late_shipment_reason(shipped_at or datetime.now(UTC), ship_by, zone)
            if reason is not None:
                node_health.record_incident(
                    session, order_id, node_id, shipment_id, IncidentKind.LATE, reason
                )
        return units


def _still_visible(session: Session, channel: str, wanted: list[stock.ReservationRequest]) -> None:
    """The plan, made on a snapshot, checked again inside the write transaction for what the
    reservation's conditional update does not check: the channel pool's share and cap, and a
    node taken out of service meanwhile. InsufficientStock sends it back to be made again."""
    needed: dict[tuple[str, str], int] = {}
    for r in wanted:
        needed[(r.node_id, r.sku)] = needed.get((r.node_id, r.sku), 0) + r.quantity
    pool = channel_pool(session, channel)
    if pool is not None:
        # The share is of what is left now, not at planning: other orders of the channel
        # reserving at these positions must wait, or they all pass on the same figures.
        lock_positions(session, needed)
    now = {
        (f.node_id, f.sku): f
        for f in positions_for(session, {sku for _, sku in needed}, {node for node, _ in needed})
    }
    for (node_id, sku), quantity in needed.items():
        figures = now.get((node_id, sku))
        if figures is None or visible_to_channel(figures, pool) < quantity:
            raise InsufficientStock(node_id=node_id, sku=sku, quantity=quantity)


def _held_for(session: Session, request: AllocationRequest) -> list[Reservation]:
    """This order's active reservations for these lines made by an earlier attempt of this
    allocation: those of its shipments (numbered from `first_shipment_seq`). Another piece of a
    divided line, reserved for an earlier shipment, is not this allocation's."""
    wanted = {ln.line_no for ln in request.lines}
    return [
        r
        for r in stock.active_reservations(session, request.order_id)
        if r.line_no in wanted and _shipment_seq(r.shipment_id) >= request.first_shipment_seq
    ]


def _shipment_seq(shipment_id: str) -> int:
    """The number of `<order id>-S<n>`, the order workflow's shipment ids; 0 for any other."""
    _, _, number = shipment_id.rpartition("-S")
    return int(number) if number.isdigit() else 0


def _location(node: Node) -> GeoPoint:
    return GeoPoint(lat=node.lat, lon=node.lon)


def _reservation_requests(
    request: AllocationRequest, plan: ChosenPlan
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
