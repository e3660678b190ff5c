"""The orders read model: the workflow projects its state here; the API lists and reads from here."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, String, Update, bindparam, case, func, true, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.orders import TERMINAL_ORDER_STATUSES, OrderState, ShipmentStatus, TimelineEntry
from ledger.tables import OrderView, utcnow

_VIEWS = OrderView.__table__  # type: ignore[attr-defined]
# The document key naming the workflow run that projected it (set beside OrderState's fields).
RUN_ID = "run_id"
# The document key of the deliveries the read model recorded itself (scans the workflow could
# not take), by shipment: {"delivered_at", "tracking_number", "entry"}. A projection does not
# know them; it gets them back (_keep_recorded_deliveries).
RECORDED_DELIVERIES = "recorded_deliveries"


def project(session: Session, document: dict) -> bool:
    """Store an order's state (`OrderState.model_dump(mode="json")`, with the projecting run's
    id under RUN_ID) unless a newer version of the same run is already there (activity retries
    arrive late). A document from another run than the stored one replaces it whatever its
    version: a Temporal reset or a re-run starts counting versions again, and the run that
    replaced the stored one is the newer. A delivery the read model recorded after the workflow
    closed (record_delivery) stays recorded: the workflow may still project without it (its
    last publish, or a workflow task retried after its worker died). Returns whether it was
    stored."""
    run_id = document.get(RUN_ID)
    values = {
        "b_order_id": document["order"]["order_id"],
        "b_run_id": run_id,
        "b_version": document["version"],
        "b_status": document["status"],
        "b_document": document,
        "b_updated_at": utcnow(),
    }
    # Core statements on the session's connection: the ORM's bulk-update path would also try to
    # synchronise objects in the session (there are none), at several times the cost. The usual
    # case, one statement: no delivery recorded by the read model to keep.
    connection = session.connection()
    statements = _BY_VERSION if run_id is None else _BY_RUN
    if connection.execute(statements.unless_recorded, values).rowcount == 1:
        return True
    # Locked as record_delivery locks it (PostgreSQL; SQLite writers are serialised): a scan
    # recorded meanwhile is in what is read here, or waits for this projection and adds to it.
    stored = connection.execute(_LOCK_DOCUMENT, values).scalar_one_or_none()
    if stored is None:
        try:
            with session.begin_nested():
                session.add(_new_view(document))
        except IntegrityError:
            return False  # a concurrent attempt inserted it first
        return True
    if not stored.get(RECORDED_DELIVERIES):
        return False  # not newer
    values["b_document"] = _keep_recorded_deliveries(document, stored)
    return connection.execute(statements.merged, values).rowcount == 1


def _newer(by_run: bool) -> ColumnElement[bool]:
    """Whether a document of :b_run_id at :b_version replaces the stored one. Documents without
    a run id (projected before runs were recorded) compare by version alone."""
    version_rule = _VIEWS.c.version < bindparam("b_version")
    if not by_run:
        return version_rule
    # The stored run is read once: SQLite parses the document for each JSON path it reads.
    run_id = bindparam("b_run_id", type_=String)
    same_run = func.coalesce(_VIEWS.c.document[RUN_ID].as_string(), run_id) == run_id
    return case((same_run, version_rule), else_=true())


@dataclass(frozen=True)
class _Projections:
    """The update of a projection, built once (a statement built per call costs more Python
    than the database takes to run it): `unless_recorded` while no delivery is recorded in the
    stored document, `merged` with them put back."""

    unless_recorded: Update
    merged: Update

    @classmethod
    def of(cls, by_run: bool) -> "_Projections":
        merged = (
            update(_VIEWS)
            .where(_VIEWS.c.order_id == bindparam("b_order_id"), _newer(by_run))
            .values(
                status=bindparam("b_status"),
                version=bindparam("b_version"),
                document=bindparam("b_document", type_=_VIEWS.c.document.type),
                updated_at=bindparam("b_updated_at", type_=_VIEWS.c.updated_at.type),
            )
        )
        unrecorded = _VIEWS.c.document[RECORDED_DELIVERIES].as_string().is_(None)
        return cls(unless_recorded=merged.where(unrecorded), merged=merged)


_BY_RUN, _BY_VERSION = _Projections.of(by_run=True), _Projections.of(by_run=False)
_LOCK_DOCUMENT = (
    core_select(_VIEWS.c.document)
    .where(_VIEWS.c.order_id == bindparam("b_order_id"))
    .with_for_update()
)


def _keep_recorded_deliveries(document: dict, stored: dict) -> dict:
    """`document` with the deliveries `stored` recorded put back on its shipments. The same
    run's shipment is the parcel scanned; another run's (a reset) only if it shows that parcel
    shipped under the same tracking number (a shipment labelled anew is another parcel)."""
    same_run = stored.get(RUN_ID) in (None, document.get(RUN_ID))
    merged = dict(document)
    merged["shipments"] = [dict(s) for s in document.get("shipments", [])]
    merged["timeline"] = list(document.get("timeline", []))
    kept = {}
    for shipment in merged["shipments"]:
        delivery = stored[RECORDED_DELIVERIES].get(shipment.get("shipment_id"))
        if delivery is None:
            continue
        if not same_run and (
            shipment.get("status") != ShipmentStatus.SHIPPED
            or shipment.get("tracking_number") != delivery["tracking_number"]
        ):
            continue
        kept[shipment["shipment_id"]] = delivery
        if shipment.get("status") != ShipmentStatus.DELIVERED:  # the workflow may know it too
            shipment["status"] = ShipmentStatus.DELIVERED.value
            shipment["delivered_at"] = delivery["delivered_at"]
            _insert_by_time(merged["timeline"], delivery["entry"])
    if kept:
        merged[RECORDED_DELIVERIES] = kept
    return merged


def _insert_by_time(timeline: list[dict], entry: dict) -> None:
    at = datetime.fromisoformat(entry["at"])
    index = next(
        (i for i, e in enumerate(timeline) if datetime.fromisoformat(e["at"]) > at), len(timeline)
    )
    timeline.insert(index, entry)


def store_state(view: OrderView, state: OrderState) -> None:
    """The changed state as the row's document, keeping the keys beside OrderState's fields
    (the run that projected it, the deliveries recorded here): the next projection reads them."""
    beside = {k: v for k, v in view.document.items() if k not in OrderState.model_fields}
    view.document = state.model_dump(mode="json") | beside
    view.updated_at = utcnow()


def _new_view(document: dict) -> OrderView:
    order = document["order"]
    return OrderView(
        order_id=order["order_id"],
        channel=order["channel"],
        external_id=order["external_id"],
        order_type=order["order_type"],
        priority=order["priority"],
        status=document["status"],
        version=document["version"],
        document=document,
        created_at=datetime.fromisoformat(order["submitted_at"]),
    )


def get_order(session: Session, order_id: str) -> OrderState | None:
    view = session.get(OrderView, order_id)
    return OrderState.model_validate(view.document) if view else None


def node_of_shipment(session: Session, order_id: str, shipment_id: str) -> str | None:
    """The node a shipment of the order is at, None if the read model has no such shipment.
    Node callbacks ask this for every event: reading two fields does not need the whole order
    validated."""
    document = session.exec(
        select(OrderView.document).where(col(OrderView.order_id) == order_id)
    ).first()
    for shipment in (document or {}).get("shipments", []):
        if shipment.get("shipment_id") == shipment_id:
            return shipment.get("node_id")
    return None


def list_orders(
    session: Session,
    status: str | None = None,
    channel: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[OrderState]:
    query = select(OrderView).order_by(col(OrderView.created_at).desc(), col(OrderView.order_id))
    if status:
        query = query.where(col(OrderView.status) == status)
    if channel:
        query = query.where(col(OrderView.channel) == channel)
    rows = session.exec(query.offset(offset).limit(limit)).all()
    return [OrderState.model_validate(row.document) for row in rows]


def record_delivery(session: Session, order_id: str, shipment_id: str, carrier: str) -> bool:
    """Carriers report delivery after the order's workflow has closed; the read model keeps it,
    under RECORDED_DELIVERIES too, for project() to put back. A shipment the document already
    shows delivered is recorded as well: that document may come from a workflow task that took
    an earlier send of the scan, projected, and never completed (its worker died), whose retry
    then projects without it. The whole document is read, changed and written back, so the row
    is locked first (PostgreSQL; SQLite writers are serialised): two scans for two parcels of one
    order at once each see the other's delivery instead of writing over it."""
    view = session.get(OrderView, order_id, with_for_update=True)
    if view is None:
        return False
    state = OrderState.model_validate(view.document)
    shipment = next((s for s in state.shipments if s.shipment_id == shipment_id), None)
    if shipment is None:
        return False
    recorded = dict(view.document.get(RECORDED_DELIVERIES) or {})
    if shipment_id in recorded:
        return True  # a resend
    detail = f"{shipment_id} delivered by {carrier}, tracking {shipment.tracking_number}"
    if shipment.status != ShipmentStatus.DELIVERED or shipment.delivered_at is None:
        shipment.status = ShipmentStatus.DELIVERED
        shipment.delivered_at = utcnow()  # the scan's arrival: the promise-kept measure's date
        entry = TimelineEntry(at=shipment.delivered_at, event="delivered", detail=detail)
        state.timeline.append(entry)
    else:  # its timeline has the workflow's entry; a projection without it gets this one
        entry = TimelineEntry(at=shipment.delivered_at, event="delivered", detail=detail)
    recorded[shipment_id] = {
        "delivered_at": shipment.delivered_at.isoformat(),
        "tracking_number": shipment.tracking_number,
        "entry": entry.model_dump(mode="json"),
    }
    store_state(view, state)
    view.document = view.document | {RECORDED_DELIVERIES: recorded}
    session.add(view)
    return True


def open_orders(session: Session, batch: int = 1000) -> list[OrderState]:
    """Every order not yet completed, cancelled or rejected."""
    closed = sorted(status.value for status in TERMINAL_ORDER_STATUSES)
    rows = session.exec(
        select(OrderView)
        .where(col(OrderView.status).not_in(closed))
        .order_by(col(OrderView.order_id))
    ).all()
    return [OrderState.model_validate(row.document) for row in rows]


def clear_attention(session: Session, order_id: str, why: str) -> OrderState | None:
    """Clear a closed order's `attention` (support dealt with it), noting who and why; None if
    the order has none. The row is locked: a late event rewrites the same document."""
    view = session.get(OrderView, order_id, with_for_update=True)
    if view is None:
        return None
    state = OrderState.model_validate(view.document)
    if not state.attention:
        return None
    detail = f"{state.attention}: {why}"
    state.attention = None
    state.timeline.append(TimelineEntry(at=utcnow(), event="acknowledged", detail=detail))
    store_state(view, state)
    session.add(view)
    return state
