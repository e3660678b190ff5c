"""Clients for the systems that run a node: a WMS or 3PL for warehouses, DCs, 3PLs and suppliers,
store fulfilment for stores. Each call carries the shipment id in its body and an Idempotency-Key
header `<shipment id>:<operation>`, the same on every retry (tenacity's and Temporal's), so a node
deduplicates by either."""

from typing import Any

from pydantic import BaseModel

from connectors.errors import PermanentConnectorError
from connectors.http import JsonHttpClient
from domain.network import NodeType
from domain.orders import Address, DeliveryMethod, OrderLine


class ReleaseRequest(BaseModel):
    order_id: str
    shipment_id: str
    node_id: str
    lines: list[OrderLine]
    ship_to: Address
    delivery_method: DeliveryMethod


class DispatchRequest(BaseModel):
    order_id: str
    shipment_id: str
    node_id: str
    carrier: str
    service: str
    tracking_number: str
    label_id: str


class NodeAck(BaseModel):
    shipment_id: str
    node_reference: str | None = None
    status: str


class NodeConnector:
    """Base for node systems; subclasses name their resource path."""

    kind = "node"
    resource = "releases"

    def __init__(self, http: JsonHttpClient) -> None:
        self._http = http

    async def release(self, system_url: str, request: ReleaseRequest) -> NodeAck:
        body = request.model_dump(mode="json")
        url = f"{system_url}/{self.resource}"
        return _ack(await self._http.post(url, body, _idempotency(request.shipment_id, "release")))

    async def dispatch(self, system_url: str, request: DispatchRequest) -> NodeAck:
        url = f"{system_url}/{self.resource}/{request.shipment_id}/dispatch"
        body = request.model_dump(mode="json")
        return _ack(await self._http.post(url, body, _idempotency(request.shipment_id, "dispatch")))

    async def cancel(self, system_url: str, shipment_id: str, reason: str) -> NodeAck:
        """Cancelling what the node never received counts as done (404 is success here)."""
        url = f"{system_url}/{self.resource}/{shipment_id}/cancel"
        try:
            headers = _idempotency(shipment_id, "cancel")
            return _ack(await self._http.post(url, {"reason": reason}, headers))
        except PermanentConnectorError as exc:
            if exc.status_code == 404:
                return NodeAck(shipment_id=shipment_id, status="unknown")
            raise


class WmsConnector(NodeConnector):
    kind = "wms"
    resource = "fulfillment-orders"


class StoreConnector(NodeConnector):
    kind = "store"
    resource = "pick-requests"


def _idempotency(shipment_id: str, operation: str) -> dict[str, str]:
    """Derived from the shipment and the operation only, never from the attempt, so every
    retry of one call sends the same key and two different calls never share one."""
    return {"Idempotency-Key": f"{shipment_id}:{operation}"}


def _ack(payload: dict[str, Any]) -> NodeAck:
    return NodeAck.model_validate(payload)


class NodeConnectors:
    """Picks the connector for a node type."""

    def __init__(self, http: JsonHttpClient) -> None:
        self._wms = WmsConnector(http)
        self._store = StoreConnector(http)

    def for_node_type(self, node_type: NodeType | str) -> NodeConnector:
        return self._store if NodeType(node_type) == NodeType.STORE else self._wms
