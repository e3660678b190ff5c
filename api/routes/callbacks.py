"""Webhooks for node systems and carriers, routed to the order's workflow."""

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool

from api.deps import EngineDep, SessionDep, TemporalDep, off_loop
from api.errors import ApiError
from api.schemas import CallbackAccepted, CarrierCallback, NodeCallback
from api.security import NodeCaller, remember_callback, verify_callback
from api.workflow_calls import send_node_event
from contracts.order import NodeEvent
from domain.lifecycle import delivery_scan_goes_to_read_model
from domain.orders import NodeEventType
from ledger import orders_view
from services.orders import record_delivery_scan

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])


@router.post(
    "/nodes/{node_id}/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CallbackAccepted,
)
async def node_event(
    node_id: str,
    callback: NodeCallback,
    request: Request,
    caller: NodeCaller,
    session: SessionDep,
    temporal: TemporalDep,
) -> CallbackAccepted:
    """accepted, rejected (with reason), picked, shipped (with tracking), delivered.
    Signed by the node's key; a node may only speak about its own shipments."""
    signature = await verify_callback(request, caller, node_id)
    at_node = await off_loop(
        session, orders_view.node_of_shipment, callback.order_id, callback.shipment_id
    )
    if at_node is not None and at_node != node_id:
        raise ApiError(403, "forbidden", f"shipment {callback.shipment_id} is not at {node_id}")
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
    await send_node_event(temporal, session, callback.order_id, event)
    await remember_callback(request, signature)
    return CallbackAccepted(
        order_id=callback.order_id, shipment_id=callback.shipment_id, routed_to="workflow"
    )


@router.post(
    "/carriers/{carrier}/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CallbackAccepted,
)
async def carrier_event(
    carrier: str,
    callback: CarrierCallback,
    request: Request,
    caller: NodeCaller,
    session: SessionDep,
    engine: EngineDep,
    temporal: TemporalDep,
) -> CallbackAccepted:
    """Delivery scans usually arrive after the order's workflow has completed: those update the
    read model; earlier ones go to the workflow. Signed by a gateway key."""
    if caller.node_id is not None:
        raise ApiError(403, "forbidden", "carrier events need a gateway key, not a node's key")
    signature = await verify_callback(request, caller, None)
    state = await off_loop(session, orders_view.get_order, callback.order_id)
    if state is None:
        raise ApiError(404, "order_not_found", f"no order {callback.order_id}")
    shipment = next((s for s in state.shipments if s.shipment_id == callback.shipment_id), None)
    if shipment is None or shipment.tracking_number != callback.tracking_number:
        raise ApiError(
            404, "shipment_not_found", f"no shipment {callback.shipment_id} with that tracking"
        )
    if delivery_scan_goes_to_read_model(state.status):
        await run_in_threadpool(
            record_delivery_scan, engine, callback.order_id, callback.shipment_id, carrier
        )
        await remember_callback(request, signature)
        return CallbackAccepted(
            order_id=callback.order_id, shipment_id=callback.shipment_id, routed_to="read_model"
        )
    event = NodeEvent(
        shipment_id=callback.shipment_id,
        node_id=shipment.node_id,
        event=callback.event,
        tracking_number=callback.tracking_number,
    )
    await send_node_event(temporal, session, callback.order_id, event)
    await remember_callback(request, signature)
    return CallbackAccepted(
        order_id=callback.order_id, shipment_id=callback.shipment_id, routed_to="workflow"
    )
