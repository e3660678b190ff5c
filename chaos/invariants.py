"""What must hold after any amount of failure: read from the ledger, the orders read model and
the simulators' own record of what they were asked to do."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from chaos.fault_invariants import bad_feed_line_stops_nothing, resent_order_is_the_same_order
from chaos.faults import ErpFeed, Resubmission
from chaos.invariant import Invariant
from chaos.partial import PartialShipments
from chaos.watch import SilentWait
from domain.orders import OrderState, ShipmentStatus
from ledger.audit import ledger_imbalances, open_reservations_of
from ledger.tables import MovementKind, OrderView, Reservation, StockMovement, StockPosition

# Closed, or waiting for stock (a ship-partial order with some lines gone waits as explicitly).
SETTLED = {"COMPLETED", "CANCELLED", "REJECTED", "BACKORDERED", "PARTIALLY_BACKORDERED"}
CLOSED = {"COMPLETED", "CANCELLED", "REJECTED"}
# Stock arrives by feeds (snapshots, deltas, receipts of incoming stock; the opening balance is a
# snapshot) and leaves only by shipments: nothing else may touch on hand, however often
# activities are retried.
MOVES_ON_HAND = {
    MovementKind.SNAPSHOT,
    MovementKind.DELTA,
    MovementKind.RECEIPT,
    MovementKind.SHIPMENT,
}
# A deadline is when the wait escalates; one this far in the past led nowhere.
DEADLINE_GRACE = timedelta(seconds=60)


def is_settled(status: str, document: dict) -> bool:
    """Closed, backordered, or open with a reason a person must act (`attention`): the
    harness waits for nothing more."""
    return status in SETTLED or bool(document.get("attention"))


@dataclass(frozen=True)
class TemporalFacts:
    # NeedsAttention as Temporal indexes it, for every order still open (None: not set, or no
    # workflow)
    needs_attention: dict[str, bool | None] = field(default_factory=dict)
    # whether a workflow exists again for the order re-sent after its deletion (None: not tried)
    resubmitted_workflow_exists: bool | None = None


def check_invariants(
    engine: Engine,
    order_ids: list[str],
    sim_stats: dict,
    temporal: TemporalFacts | None = None,
    silent_waits: list[SilentWait] | None = None,
    erp: ErpFeed | None = None,
    resubmission: Resubmission | None = None,
    partial: PartialShipments | None = None,
) -> list[Invariant]:
    temporal = temporal or TemporalFacts()
    with Session(engine) as session:
        views = {
            v.order_id: OrderState.model_validate(v.document)
            for v in session.exec(select(OrderView).where(col(OrderView.order_id).in_(order_ids)))
        }
        found = [
            _every_order_settled(order_ids, views),
            _ledger_balanced(session, views),
            _on_hand_moved_only_by_shipments_and_feeds(session),
            _nothing_shipped_twice(session, views, sim_stats),
            _no_line_shipped_twice_by_the_nodes(session, views, sim_stats),
            _nothing_labelled_twice(views, sim_stats),
            _nothing_oversold(session),
            _every_delivered_scan_in_the_read_model(views, sim_stats),
            _no_order_open_without_deadline_or_attention(
                views, temporal, silent_waits or [], datetime.now(UTC)
            ),
        ]
        if erp is not None:
            found.append(bad_feed_line_stops_nothing(session, erp))
        if partial is not None:
            found.append(partial.invariant(session))
        if resubmission is not None:
            found.append(
                resent_order_is_the_same_order(
                    resubmission, temporal.resubmitted_workflow_exists, views, sim_stats
                )
            )
        return found


def _every_order_settled(order_ids: list[str], views: dict[str, OrderState]) -> Invariant:
    def label(order_id: str) -> str:
        if order_id not in views:
            return "MISSING"
        state = views[order_id]
        return f"{state.status} (attention)" if state.attention else str(state.status)

    statuses = Counter(label(o) for o in order_ids)
    unsettled = [
        o
        for o in order_ids
        if o not in views or not is_settled(str(views[o].status), {"attention": views[o].attention})
    ]
    summary = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
    stuck = f"; not settled: {', '.join(unsettled[:5])}" if unsettled else ""
    return Invariant(
        "every order completed, cancelled or explicitly waiting",
        not unsettled,
        f"{len(order_ids)} orders: {summary}{stuck}",
    )


def _ledger_balanced(session: Session, views: dict[str, OrderState]) -> Invariant:
    problems = ledger_imbalances(session)
    closed = [o for o, v in views.items() if str(v.status) in CLOSED]
    leftovers = open_reservations_of(session, closed)
    problems += [
        f"closed order {r.order_id} still reserves {r.quantity} {r.sku}" for r in leftovers
    ]
    return Invariant(
        "ledger balanced (reserved = open reservations, counters = what the entries rebuild)",
        not problems,
        "; ".join(problems[:5]) or f"no drift; {len(closed)} closed orders hold no reservation",
    )


def _on_hand_moved_only_by_shipments_and_feeds(session: Session) -> Invariant:
    kinds = Counter(
        session.exec(select(StockMovement.kind).where(col(StockMovement.d_on_hand) != 0)).all()
    )
    stray = {k: n for k, n in kinds.items() if k not in MOVES_ON_HAND}
    return Invariant(
        "on hand moved only by shipments and feeds",
        not stray,
        f"on-hand entries by kind: {dict(sorted(kinds.items()))}",
    )


def _nothing_shipped_twice(
    session: Session, views: dict[str, OrderState], sim_stats: dict
) -> Invariant:
    problems = []
    fulfilled = _fulfilled_units(session)
    shipped_ids = set()
    for order_id, state in views.items():
        shipped: Counter[int] = Counter()
        for s in state.shipments:
            if s.status in (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED):
                shipped_ids.add(s.shipment_id)
                for line in s.lines:
                    shipped[line.line_no] += line.quantity
        for line in state.order.lines:
            units = shipped[line.line_no]
            if units > line.quantity or fulfilled[(order_id, line.line_no)] != units:
                problems.append(
                    f"{order_id} line {line.line_no}: ordered {line.quantity}, shipped {units}, "
                    f"ledger shipped {fulfilled[(order_id, line.line_no)]}"
                )
            if str(state.status) == "COMPLETED" and units != line.quantity:
                problems.append(f"{order_id} completed with line {line.line_no} at {units}")
    # A parcel the node system sent out must be one OpenDOM knows as shipped, and only once.
    ours = {sid for sid in sim_stats["releases"] if sid.rsplit("-S", 1)[0] in views}
    sent = {sid for sid in ours if sim_stats["releases"][sid] == "shipped"}
    problems += [f"node shipped {sid}, OpenDOM does not know it" for sid in sent - shipped_ids]
    return Invariant(
        "no order shipped twice (per line: shipped <= ordered = ledger; every node shipment known)",
        not problems,
        "; ".join(problems[:5]) or f"{len(shipped_ids)} shipments shipped, each once",
    )


def _fulfilled_units(session: Session) -> defaultdict[tuple[str, int], int]:
    fulfilled: defaultdict[tuple[str, int], int] = defaultdict(int)
    for r in session.exec(select(Reservation).where(col(Reservation.status) == "fulfilled")):
        fulfilled[(r.order_id, r.line_no)] += r.quantity
    return fulfilled


def _no_line_shipped_twice_by_the_nodes(
    session: Session, views: dict[str, OrderState], sim_stats: dict
) -> Invariant:
    """What the node systems really sent out (the simulators count units per order line when a
    parcel leaves), whatever the workflow believes: never more than ordered, exactly what the
    ledger took off its stock (a late "shipped" reconciled), all of it for a completed order."""
    problems = []
    fulfilled = _fulfilled_units(session)
    by_nodes = sim_stats["shipped_units"]
    parcels = 0
    for order_id, state in views.items():
        units = {int(k): v for k, v in by_nodes.get(order_id, {}).items()}
        for line in state.order.lines:
            sent = units.get(line.line_no, 0)
            parcels += sent
            ledger = fulfilled[(order_id, line.line_no)]
            if sent > line.quantity:
                problems.append(
                    f"{order_id} line {line.line_no}: nodes shipped {sent} of {line.quantity} "
                    "ordered"
                )
            if sent != ledger:
                problems.append(
                    f"{order_id} line {line.line_no}: nodes shipped {sent}, ledger shipped {ledger}"
                )
            if str(state.status) == "COMPLETED" and sent != line.quantity:
                problems.append(
                    f"{order_id} completed, nodes shipped {sent} of line {line.line_no}'s "
                    f"{line.quantity}"
                )
    return Invariant.of(
        "no line shipped twice by the nodes (per line: the nodes' units <= ordered = ledger)",
        problems,
        f"the nodes shipped {parcels} units, none twice",
    )


def _every_delivered_scan_in_the_read_model(
    views: dict[str, OrderState], sim_stats: dict
) -> Invariant:
    """Every delivered scan the carrier sent (answered or not) shows as DELIVERED."""
    problems = []
    shipments = {s.shipment_id: s for state in views.values() for s in state.shipments}
    ours = {
        sid: answer
        for sid, answer in sim_stats["delivered_scans"].items()
        if sid.rsplit("-S", 1)[0] in views
    }
    for sid, answer in sorted(ours.items()):
        shipment = shipments.get(sid)
        status = shipment.status if shipment is not None else "unknown to OpenDOM"
        if status != ShipmentStatus.DELIVERED:
            problems.append(f"{sid} scanned delivered (API answered {answer}), read model {status}")
    return Invariant.of(
        "every delivered scan in the read model",
        problems,
        f"{len(ours)} delivered scans, each DELIVERED in the read model",
    )


def _no_order_open_without_deadline_or_attention(
    views: dict[str, OrderState],
    temporal: TemporalFacts,
    silent_waits: list[SilentWait],
    now: datetime,
) -> Invariant:
    """An open order waits for a clock (a deadline not long past) or for a person (attention,
    with Temporal's NeedsAttention set so ops find it): at the end, and during the run (the
    watch's silent waits, each longer than its grace)."""
    problems = [f"during the run: {w.line()}" for w in silent_waits]
    open_ = {o: v for o, v in views.items() if str(v.status) not in CLOSED}
    for order_id, state in sorted(open_.items()):
        if state.attention:
            if temporal.needs_attention.get(order_id) is not True:
                problems.append(
                    f"{order_id} ({state.status}) needs attention ({state.attention}) but "
                    f"NeedsAttention is {temporal.needs_attention.get(order_id)}"
                )
        elif state.deadline is None:
            problems.append(
                f"{order_id} {state.status}, waiting for {state.waiting_for!r}: no deadline, "
                "no attention"
            )
        elif state.deadline.astimezone(UTC) + DEADLINE_GRACE < now:
            problems.append(
                f"{order_id} {state.status}: deadline {state.deadline:%H:%M:%S} passed "
                f"{(now - state.deadline).total_seconds():.0f} s ago, no attention"
            )
    flagged = sum(1 for v in open_.values() if v.attention)
    return Invariant.of(
        "no order open without either a deadline or a NeedsAttention flag",
        problems,
        f"none waited silently during the run; at the end {len(open_)} open, {flagged} flagged "
        "NeedsAttention, the rest with a deadline",
    )


def _nothing_labelled_twice(views: dict[str, OrderState], sim_stats: dict) -> Invariant:
    problems = []
    labels = sim_stats["labels"]  # the carrier's labels, by idempotency key (the shipment id)
    seen_tracking: dict[str, str] = {}
    labelled = collect = 0
    for state in views.values():
        for s in state.shipments:
            if not s.label_id:
                continue
            labelled += 1
            carrier_label = labels.get(s.shipment_id)
            if carrier_label is None:
                collect += 1  # click & collect: a collection code, no carrier label
            elif carrier_label["label_id"] != s.label_id:
                problems.append(f"{s.shipment_id} holds {s.label_id}, carrier issued another")
            if (other := seen_tracking.setdefault(s.tracking_number or "", s.shipment_id)) != (
                s.shipment_id
            ):
                problems.append(f"{s.shipment_id} and {other} share tracking {s.tracking_number}")
    issued = sim_stats["counts"].get("labels_issued", 0)
    return Invariant(
        "no shipment labelled twice (one carrier label per shipment, tracking numbers unique)",
        not problems,
        "; ".join(problems[:5])
        or f"{labelled} labelled shipments ({collect} by collection code); carrier issued {issued}",
    )


def _nothing_oversold(session: Session) -> Invariant:
    bad = [
        f"{p.node_id}/{p.sku}: on hand {p.on_hand}, reserved {p.reserved}, held {p.held}"
        for p in session.exec(select(StockPosition))
        if p.on_hand < 0 or p.reserved < 0 or p.held < 0 or p.reserved + p.held > p.on_hand
    ]
    return Invariant(
        "no unit oversold (on hand >= reserved + held >= 0 at every position)",
        not bad,
        "; ".join(bad[:5]) or "every position covers its reservations and holds",
    )
