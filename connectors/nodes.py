"""Clients for the systems that run a node: a WMS or 3PL for warehouses, DCs, 3PLs and suppliers,
store fulfilment for stores. Each call carries the shipment id, which the node uses to deduplicate."""

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
        return _ack(await self._http.post(f"{system_url}/{self.resource}", body))

    async def dispatch(self, system_url: str, request: DispatchRequest) -> NodeAck:
        url = f"{system_url}/{self.resource}/{request.shipment_id}/dispatch"
        return _ack(await self._http.post(url, request.model_dump(mode="json")))

    async def cancel(self, system_url: str, shipment_id: str, reason: str) -> NodeAck:
        """Cancelling what the node never received counts as done (404 is success here)."""
        url = f"{system_url}/{self.resource}/{shipment_id}/cancel"
        try:
            return _ack(await self._http.post(url, {"reason": reason}))
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


def _ack(payload: dict[str, Any]) -> NodeAck:
    return NodeAck.model_validate(payload)


class NodeConnectors:
    """Picks the connector for a node type."""

    def __init__(self, http: JsonHttpClient) -> None:
        self._wms = WmsConnector(http)
        self._store = StoreConnector(http)

    def for_node_type(self, node_type: NodeType | str) -> NodeConnector:
        return self._store if NodeType(node_type) == NodeType.STORE else self._wms
