"""The orders read model: the workflow projects its state here; the API lists and reads from here."""

from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.orders import TERMINAL_ORDER_STATUSES, OrderState, ShipmentStatus, TimelineEntry
from ledger.tables import OrderView, utcnow

_VIEWS = OrderView.__table__  # type: ignore[attr-defined]
# The document key naming the workflow run that projected it (set beside OrderState's fields).
RUN_ID = "run_id"


def project(session: Session, document: dict) -> bool:
    """Store an order's state (`OrderState.model_dump(mode="json")`, with the projecting run's
    id under RUN_ID) unless a newer version of the same run is already there (activity retries
    arrive late). A document from another run than the stored one replaces it whatever its
    version: a Temporal reset or a re-run starts counting versions again, and the run that
    replaced the stored one is the newer. Returns whether it was stored."""
    order_id, version = document["order"]["order_id"], document["version"]
    # A Core statement on the session's connection: the ORM's bulk-update path would also try to
    # synchronise objects in the session (there are none), at several times the cost.
    stored = session.connection().execute(
        update(_VIEWS)
        .where(_VIEWS.c.order_id == order_id, _newer(document.get(RUN_ID), version))
        .values(status=document["status"], version=version, document=document, updated_at=utcnow())
    )
    if stored.rowcount == 1:
        return True
    if session.get(OrderView, order_id) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(_new_view(document))
    except IntegrityError:
        return False  # a concurrent attempt inserted it first
    return True


def _newer(run_id: str | None, version: int) -> ColumnElement[bool]:
    """Whether a document of `run_id` at `version` replaces the stored one. Documents without
    a run id (projected before runs were recorded) compare by version alone."""
    if run_id is None:
        return _VIEWS.c.version < version
    stored_run = _VIEWS.c.document[RUN_ID].as_string()
    same_run = or_(stored_run.is_(None), stored_run == run_id)
    return or_(and_(same_run, _VIEWS.c.version < version), stored_run != run_id)


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
    """Carriers report delivery after the order's workflow has closed; the read model keeps it.
    The whole document is read, changed and written back, so the row is locked first
    (PostgreSQL; SQLite writers are serialised): two scans for two parcels of one order at
    once each see the other's delivery instead of writing over it."""
    view = session.get(OrderView, order_id, with_for_update=True)
    if view is None:
        return False
    state = OrderState.model_validate(view.document)
    shipment = next((s for s in state.shipments if s.shipment_id == shipment_id), None)
    if shipment is None:
        return False
    if shipment.status != ShipmentStatus.DELIVERED:
        shipment.status = ShipmentStatus.DELIVERED
        shipment.delivered_at = utcnow()  # the scan's arrival: the promise-kept measure's date
        detail = f"{shipment_id} delivered by {carrier}, tracking {shipment.tracking_number}"
        state.timeline.append(TimelineEntry(at=utcnow(), event="delivered", detail=detail))
        run = {RUN_ID: view.document[RUN_ID]} if RUN_ID in view.document else {}
        view.document = state.model_dump(mode="json") | run  # the next projection compares it
        view.updated_at = utcnow()
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
    run = {RUN_ID: view.document[RUN_ID]} if RUN_ID in view.document else {}
    view.document = state.model_dump(mode="json") | run
    view.updated_at = utcnow()
    session.add(view)
    return state
