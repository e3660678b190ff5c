"""Invariants of the faults that are not about orders in general: a bad line in a pulled feed
costs that line only, and a re-sent order whose workflow is gone is the same order."""

from sqlmodel import Session, col, select

from chaos.faults import ERP_SOURCE, ErpFeed, Resubmission
from chaos.invariant import Invariant
from domain.orders import OrderState
from ledger.tables import FeedEvent, FeedSource


def bad_feed_line_stops_nothing(session: Session, erp: ErpFeed) -> Invariant:
    applied = set(
        session.exec(select(FeedEvent.event_id).where(col(FeedEvent.source) == ERP_SOURCE)).all()
    )
    source = session.get(FeedSource, ERP_SOURCE)
    cursor = source.cursor if source is not None else None
    problems = [f"good line {e} not applied" for e in erp.good if e not in applied]
    problems += [f"bad line {e} applied" for e in erp.bad if e in applied]
    if cursor != str(erp.queued):
        problems.append(f"feed cursor at {cursor}, {erp.queued} lines served")
    return Invariant.of(
        "a bad line in the pulled ERP feed stops nothing (the good lines applied once, the feed "
        "read to its end)",
        problems,
        f"{len(erp.good)} good lines applied, {len(erp.bad)} refused, cursor at {cursor}",
    )


def resent_order_is_the_same_order(
    resubmission: Resubmission,
    workflow_exists: bool | None,
    views: dict[str, OrderState],
    sim_stats: dict,
) -> Invariant:
    order_id = resubmission.order_id
    name = "an order re-sent after its workflow was deleted is the same order, started again never"
    if order_id is None:
        return Invariant.of(name, ["no order completed in time to be re-sent"], "")
    problems = []
    if not resubmission.deleted:
        problems.append(f"{order_id}: `temporal workflow delete` did not delete it")
    answer = resubmission.answer
    if resubmission.status_code != 200 or answer.get("duplicate") is not True:
        problems.append(
            f"{order_id} re-sent: {resubmission.status_code} duplicate={answer.get('duplicate')}"
        )
    if workflow_exists:
        problems.append(f"{order_id}: a workflow runs for it again")
    state = views.get(order_id)
    if state is None or str(state.status) != "COMPLETED":
        problems.append(f"{order_id} is {state.status if state else 'missing'} in the read model")
    known = {s.shipment_id for s in state.shipments} if state else set()
    stray = [
        sid
        for sid in sim_stats["releases"]
        if sid.rsplit("-S", 1)[0] == order_id and sid not in known
    ]
    problems += [f"{sid} released to a node after the re-send" for sid in stray]
    return Invariant.of(
        name,
        problems,
        f"{order_id}: deleted, re-sent, answered 200 duplicate, no workflow, nothing released",
    )
