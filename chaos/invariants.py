"""What must hold after any amount of failure: read from the ledger, the orders read model and
the simulators' own record of what they were asked to do."""

from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.orders import OrderState, ShipmentStatus
from ledger.audit import ledger_imbalances, open_reservations_of
from ledger.tables import MovementKind, OrderView, Reservation, StockMovement, StockPosition

SETTLED = {"COMPLETED", "CANCELLED", "REJECTED", "BACKORDERED"}
CLOSED = {"COMPLETED", "CANCELLED", "REJECTED"}
# Stock arrives by feeds (snapshots, deltas; the opening balance is a snapshot) and leaves only
# by shipments: nothing else may touch on hand, however often activities are retried.
MOVES_ON_HAND = {MovementKind.SNAPSHOT, MovementKind.DELTA, MovementKind.SHIPMENT}


@dataclass(frozen=True)
class Invariant:
    name: str
    holds: bool
    detail: str

    def line(self) -> str:
        return f"  [{'PASS' if self.holds else 'FAIL'}] {self.name}: {self.detail}"


def check_invariants(engine: Engine, order_ids: list[str], sim_stats: dict) -> list[Invariant]:
    with Session(engine) as session:
        views = {
            v.order_id: OrderState.model_validate(v.document)
            for v in session.exec(select(OrderView).where(col(OrderView.order_id).in_(order_ids)))
        }
        return [
            _every_order_settled(order_ids, views),
            _ledger_balanced(session, views),
            _on_hand_moved_only_by_shipments_and_feeds(session),
            _nothing_shipped_twice(session, views, sim_stats),
            _nothing_labelled_twice(views, sim_stats),
            _nothing_oversold(session),
        ]


def _every_order_settled(order_ids: list[str], views: dict[str, OrderState]) -> Invariant:
    statuses = Counter(str(views[o].status) if o in views else "MISSING" for o in order_ids)
    unsettled = sum(n for s, n in statuses.items() if s not in SETTLED)
    summary = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
    return Invariant(
        "every order completed, cancelled or explicitly waiting",
        unsettled == 0,
        f"{len(order_ids)} orders: {summary}",
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
    fulfilled: defaultdict[tuple[str, int], int] = defaultdict(int)
    for r in session.exec(select(Reservation).where(col(Reservation.status) == "fulfilled")):
        fulfilled[(r.order_id, r.line_no)] += r.quantity
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
