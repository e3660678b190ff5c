"""Orders grouped into fewer parcels (issue 14, item 6): the order workflow's parcel steps.

Joining and leaving a parcel are database-only (local activities); the parcel's label may call
the carrier, once per parcel: the member holding the claim buys it keyed by the parcel id, so a
retried purchase returns the same label, and the others reuse it (services.parcels)."""

import asyncio

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import permanent_errors_are_final
from activities.fulfilment import NodeDirectory
from connectors.carrier import CarrierConnector, LabelRequest
from contracts.activities import (
    BuyLabelInput,
    JoinParcelInput,
    JoinParcelResult,
    LeaveParcelInput,
    LeaveParcelResult,
    ParcelLabelResult,
)
from contracts.names import ActivityName
from domain.geo import GeoPoint
from services import parcels

# A member whose parcel's label is being bought by another looks again this often, this long,
# before the activity fails and Temporal retries it with backoff.
PENDING_POLL_EVERY = 0.2
PENDING_POLL_SECONDS = 10.0


class ParcelActivities:
    def __init__(
        self, engine: Engine, carrier: CarrierConnector, window_scale: float = 1.0
    ) -> None:
        self._engine = engine
        self._carrier = carrier
        self._directory = NodeDirectory(engine)
        # The channel's window is in production seconds; scaled like the SLAs (OPENDOM_SLA_SCALE)
        # so `make run` and the tests group within seconds.
        self._scale = window_scale

    @activity.defn(name=ActivityName.JOIN_PARCEL)
    def join_parcel(self, request: JoinParcelInput) -> JoinParcelResult:
        joined = parcels.join_parcel(
            self._engine,
            parcels.JoinRequest(
                order_id=request.order_id,
                shipment_id=request.shipment_id,
                channel=request.channel,
                customer_id=request.customer_id,
                ship_to=request.ship_to,
                node_id=request.node_id,
                units=request.units,
                delivery_method=request.delivery_method,
                window_seconds=request.window_seconds * self._scale,
                carrier=request.carrier,
                service=request.service,
            ),
        )
        return JoinParcelResult(
            parcel_id=joined.parcel_id, closes_at=joined.closes_at, with_orders=joined.with_orders
        )

    @activity.defn(name=ActivityName.LEAVE_PARCEL)
    def leave_parcel(self, request: LeaveParcelInput) -> LeaveParcelResult:
        left = parcels.leave_parcel(self._engine, request.shipment_id)
        return LeaveParcelResult(parcel_id=left.parcel_id, remaining_orders=left.remaining_orders)

    @activity.defn(name=ActivityName.PARCEL_LABEL)
    async def parcel_label(self, request: BuyLabelInput) -> ParcelLabelResult:
        step = await asyncio.to_thread(parcels.label_step, self._engine, request.shipment_id)
        waited = 0.0
        while step.action == "wait" and waited < PENDING_POLL_SECONDS:
            # The member holding the claim is buying it: a moment, usually.
            await asyncio.sleep(PENDING_POLL_EVERY)
            waited += PENDING_POLL_EVERY
            step = await asyncio.to_thread(parcels.label_step, self._engine, request.shipment_id)
        if step.action == "reuse":
            return ParcelLabelResult(
                label_id=step.label_id or "",
                tracking_number=step.tracking_number or "",
                carrier=step.carrier or request.carrier,
                service=step.service or request.service,
                parcel_id=step.parcel_id,
                bought=False,
                shared_with=step.shared_with,
            )
        if step.action == "wait":
            # Retried with backoff until the member buying it has recorded it.
            raise ApplicationError(
                f"the label of parcel {step.parcel_id} is being bought by {step.claimed_by}",
                type="ParcelLabelPending",
            )
        alone = step.action == "alone"
        node = await self._directory.get(request.node_id)
        if node is None:
            raise ApplicationError(
                f"unknown node {request.node_id}", type="UnknownNode", non_retryable=True
            )
        label_request = LabelRequest(
            order_id=request.order_id,
            # The carrier's idempotency key: the parcel's, so every purchase of it is one label.
            shipment_id=request.shipment_id if alone else step.parcel_id or request.shipment_id,
            carrier=request.carrier,
            service=request.service,
            ship_from=GeoPoint(lat=node.lat, lon=node.lon),
            ship_to=request.ship_to,
            units=request.units if alone else step.units,
        )
        label = await permanent_errors_are_final(lambda: self._carrier.buy_label(label_request))
        if not alone and step.parcel_id is not None:
            await asyncio.to_thread(
                parcels.record_parcel_label,
                self._engine,
                step.parcel_id,
                label.carrier,
                label.service,
                label.tracking_number,
                label.label_id,
            )
        return ParcelLabelResult(
            **label.model_dump(),
            parcel_id=None if alone else step.parcel_id,
            bought=True,
            shared_with=step.shared_with,
        )
