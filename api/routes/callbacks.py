"""Webhooks for node systems and carriers, routed to the order's workflow."""

from fastapi import APIRouter, status

from api.deps import SessionDep, TemporalDep
from api.errors import ApiError
from api.schemas import CallbackAccepted, CarrierCallback, NodeCallback
from api.workflow_calls import send_signal
from ledger import orders_view
from ledger.db import transaction
from workflows.models import NodeEvent, NodeEventType

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])


@router.post(
    "/nodes/{node_id}/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CallbackAccepted,
)
async def node_event(
    node_id: str, callback: NodeCallback, session: SessionDep, temporal: TemporalDep
) -> CallbackAccepted:
    """accepted, rejected (with reason), picked, shipped (with tracking), delivered."""
    if callback.event == NodeEventType.SHIPPED and not callback.tracking_number:
        raise ApiError(422, "invalid_request", "tracking_number: required for a shipped event")
    event = NodeEvent(
        shipment_id=callback.shipment_id,
        node_id=node_id,
        event=callback.event,
        reason=callback.reason,
        tracking_number=callback.tracking_number,
        event_id=callback.event_id,
    )
    await send_signal(temporal, session, callback.order_id, "node_event", event)
    return CallbackAccepted(
        order_id=callback.order_id, shipment_id=callback.shipment_id, routed_to="workflow"
    )


@router.post(
    "/carriers/{carrier}/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CallbackAccepted,
)
async def carrier_event(
    carrier: str, callback: CarrierCallback, session: SessionDep, temporal: TemporalDep
) -> CallbackAccepted:
    """Delivery scans usually arrive after the order's workflow has completed: those update the
    read model; earlier ones go to the workflow."""
    state = orders_view.get_order(session, callback.order_id)
    if state is None:
        raise ApiError(404, "order_not_found", f"no order {callback.order_id}")
    shipment = next((s for s in state.shipments if s.shipment_id == callback.shipment_id), None)
    if shipment is None or shipment.tracking_number != callback.tracking_number:
        raise ApiError(
            404, "shipment_not_found", f"no shipment {callback.shipment_id} with that tracking"
        )
    if state.status in ("COMPLETED", "CANCELLED"):
        with transaction(session.get_bind()) as tx:  # type: ignore[arg-type]
            orders_view.record_delivery(tx, callback.order_id, callback.shipment_id, carrier)
        return CallbackAccepted(
            order_id=callback.order_id, shipment_id=callback.shipment_id, routed_to="read_model"
        )
    event = NodeEvent(
        shipment_id=callback.shipment_id,
        node_id=shipment.node_id,
        event=callback.event,
        tracking_number=callback.tracking_number,
    )
    await send_signal(temporal, session, callback.order_id, "node_event", event)
    return CallbackAccepted(
        order_id=callback.order_id, shipment_id=callback.shipment_id, routed_to="workflow"
    )
