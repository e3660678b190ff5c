"""Webhooks for node systems and carriers, routed to the order's workflow, or to the read model
once that workflow has closed: a partner's event is recorded, never dropped."""

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from api.deps import EngineDep, SessionDep, TemporalDep, off_loop
from api.errors import ApiError
from api.schemas import CallbackAccepted, CarrierCallback, NodeCallback
from api.security import NodeCaller, remember_callback, verify_callback
from api.workflow_calls import (
    DeliveryNotTaken,
    WorkflowClosed,
    send_delivery,
    send_node_event,
    shipment_node_in_workflow,
)
from contracts.order import NodeEvent
from domain.lifecycle import delivery_scan_goes_to_read_model
from domain.orders import NodeEventType
from ledger import orders_view
from services.callbacks import record_after_close, shipment_ref
from services.parcel_scans import ParcelScanMember, parcel_scan_members

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])

# What a carrier sees of a parcel: collected from the node, delivered. Accepting, rejecting and
# picking are the node's to say: a rejection reallocates the shipment and counts against the
# node's health.
CARRIER_EVENTS = frozenset({NodeEventType.SHIPPED, NodeEventType.DELIVERED})


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
    engine: EngineDep,
    temporal: TemporalDep,
) -> CallbackAccepted:
    """accepted, rejected (with reason), picked, shipped (with tracking), delivered.
    Signed by the node's key; a node may only speak about its own shipments, ones the order
    has. After the order's workflow has closed, `delivered` still marks the shipment delivered
    and any other event is kept on the order's timeline (`late_event`): both 202, `read_model`."""
    signature = await verify_callback(request, caller, node_id)
    ref = await off_loop(session, shipment_ref, callback.order_id, callback.shipment_id)
    at_node = ref.node_id if ref is not None else None
    if at_node is None:
        # The read model may not have the shipment yet (a fast node answering a release before
        # its projection commits): the workflow is asked, by a query, which adds nothing to its
        # history. Refused only if it does not know the shipment either: each signal is a
        # history event, and a flood of them would end the order at Temporal's history limit.
        at_node = await shipment_node_in_workflow(temporal, callback.order_id, callback.shipment_id)
    if at_node is None:
        if ref is None:
            raise ApiError(404, "order_not_found", f"no order {callback.order_id}")
        raise ApiError(
            404, "shipment_not_found", f"order {callback.order_id} has no {callback.shipment_id}"
        )
    if at_node != node_id:
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
        occurred_at=callback.occurred_at,
    )
    routed_to = "workflow"
    if ref is None or ref.node_id is None:
        pass  # the read model lags the workflow: the order is open
    elif delivery_scan_goes_to_read_model(ref.order_status):
        routed_to = await _record_after_close(engine, callback.order_id, node_id, event)
    elif ref.already_taken(callback.event):
        routed_to = "duplicate"  # the workflow has it: a resend adds nothing to its history
    if routed_to == "workflow":
        try:
            await _to_workflow(temporal, session, callback.order_id, event)
        except (WorkflowClosed, DeliveryNotTaken):
            routed_to = await _record_after_close(engine, callback.order_id, node_id, event)
    await remember_callback(request, signature)
    return CallbackAccepted(
        order_id=callback.order_id, shipment_id=callback.shipment_id, routed_to=routed_to
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
    """`shipped` (collected) or `delivered` scans. Delivery scans usually arrive after the order's
    workflow has completed: those update the read model; earlier ones go to the workflow.
    A scan for a parcel several orders share names the parcel's id (`P-…`) and tracking
    number: it reaches every shipment in it, `routed_to` saying `shipment: route` for each.
    Signed by a gateway key."""
    if caller.node_id is not None:
        raise ApiError(403, "forbidden", "carrier events need a gateway key, not a node's key")
    signature = await verify_callback(request, caller, None)
    if callback.event not in CARRIER_EVENTS:
        allowed = ", ".join(sorted(CARRIER_EVENTS))
        raise ApiError(
            422, "invalid_request", f"event: a carrier reports {allowed}, not {callback.event}"
        )
    state = await off_loop(session, orders_view.get_order, callback.order_id)
    if state is None:
        raise ApiError(404, "order_not_found", f"no order {callback.order_id}")
    shipment = next((s for s in state.shipments if s.shipment_id == callback.shipment_id), None)
    if shipment is None:
        # A grouped parcel's label was bought under the parcel's id: its scans are its members'.
        members = await off_loop(
            session,
            parcel_scan_members,
            callback.order_id,
            callback.shipment_id,
            callback.tracking_number,
            callback.event,
        )
        if members is not None:
            routed = [await _parcel_member_scan(temporal, session, engine, carrier, callback, m)
                      for m in members]  # fmt: skip
            await remember_callback(request, signature)
            return CallbackAccepted(
                order_id=callback.order_id,
                shipment_id=callback.shipment_id,
                routed_to="; ".join(routed) or "no active member",
            )
    # The read model has the label before the node is handed it (the order publishes it
    # first), so a carrier names a tracking number the read model knows.
    if shipment is None or shipment.tracking_number != callback.tracking_number:
        raise ApiError(
            404, "shipment_not_found", f"no shipment {callback.shipment_id} with that tracking"
        )
    event = NodeEvent(
        shipment_id=callback.shipment_id,
        node_id=shipment.node_id,
        event=callback.event,
        tracking_number=callback.tracking_number,
    )
    routed_to = "workflow"
    if delivery_scan_goes_to_read_model(state.status):
        routed_to = await _record_after_close(engine, callback.order_id, carrier, event)
    else:
        try:
            await _to_workflow(temporal, session, callback.order_id, event)
        except (WorkflowClosed, DeliveryNotTaken):
            routed_to = await _record_after_close(engine, callback.order_id, carrier, event)
    await remember_callback(request, signature)
    return CallbackAccepted(
        order_id=callback.order_id, shipment_id=callback.shipment_id, routed_to=routed_to
    )


async def _parcel_member_scan(
    temporal: Client,
    session: Session,
    engine: Engine,
    carrier: str,
    callback: CarrierCallback,
    member: ParcelScanMember,
) -> str:
    """One member's share of a parcel's scan, routed as its own scan would be; what became of
    it, for `routed_to`."""
    event = NodeEvent(
        shipment_id=member.shipment_id,
        node_id=member.node_id,
        event=callback.event,
        tracking_number=callback.tracking_number,
    )
    routed_to: str = member.route
    if member.route == "read_model":
        routed_to = await _record_after_close(engine, member.order_id, carrier, event)
    elif member.route == "workflow":
        try:
            await _to_workflow(temporal, session, member.order_id, event)
        except (WorkflowClosed, DeliveryNotTaken):
            routed_to = await _record_after_close(engine, member.order_id, carrier, event)
    return f"{member.shipment_id}: {routed_to}"


async def _to_workflow(temporal: Client, session: Session, order_id: str, event: NodeEvent) -> None:
    if event.event == NodeEventType.DELIVERED:
        await send_delivery(temporal, session, order_id, event)
    else:
        await send_node_event(temporal, session, order_id, event)


async def _record_after_close(engine: Engine, order_id: str, sender: str, event: NodeEvent) -> str:
    """The read model keeps what the closed workflow cannot take; the route's `routed_to`."""
    await run_in_threadpool(
        record_after_close,
        engine,
        order_id,
        event.shipment_id,
        sender,
        event.event,
        event.reason,
        event.tracking_number,
        event.occurred_at,
    )
    return "read_model"
