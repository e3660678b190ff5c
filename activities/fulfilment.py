"""Activities that drive node systems and carriers through their connectors.

Permanent connector errors become non-retryable ApplicationErrors so the workflow can react (for
example reallocate); transient ones propagate and Temporal retries them with backoff.
"""

import asyncio
import time

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import connector_refused, permanent_errors_are_final
from connectors.carrier import CarrierConnector, LabelRequest
from connectors.errors import PermanentConnectorError
from connectors.node_systems import node_system_url
from connectors.nodes import DispatchRequest, NodeConnector, NodeConnectors, ReleaseRequest
from contracts.activities import (
    BuyLabelInput,
    BuyLabelResult,
    NodeCancelInput,
    NodeCancelResult,
    NodeCancelStatus,
    NodeDispatchInput,
    NodeDispatchResult,
    NodeReleaseInput,
    NodeReleaseResult,
)
from contracts.names import ActivityName
from domain.geo import GeoPoint
from ledger.tables import Node


class NodeDirectory:
    """Where each node's system is, read from the network at most every TTL_SECONDS per node:
    every connector call needs it, and it changes when ops re-point a node, rarely. A node
    re-pointed is called at its new address within that time."""

    TTL_SECONDS = 5.0

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: dict[str, tuple[Node, float]] = {}

    async def get(self, node_id: str) -> Node | None:
        entry = self._known.get(node_id)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        # A database read: off the event loop, which runs every workflow task of the worker.
        node = await asyncio.to_thread(self._read, node_id)
        if node is not None:
            self._known[node_id] = (node, time.monotonic() + self.TTL_SECONDS)
        return node

    def _read(self, node_id: str) -> Node | None:
        with Session(self._engine) as session:
            return session.get(Node, node_id)


class FulfilmentActivities:
    def __init__(
        self,
        engine: Engine,
        nodes: NodeConnectors,
        carrier: CarrierConnector,
        simulator_url: str,
    ) -> None:
        self._directory = NodeDirectory(engine)
        self._nodes = nodes
        self._carrier = carrier
        # Where `simulator` nodes are reached: the simulators serve the carrier and the nodes on
        # one base URL (OPENDOM_CARRIER_URL).
        self._simulator_url = simulator_url

    async def _node(self, node_id: str) -> tuple[Node, str, NodeConnector]:
        """The node, the base URL of its system and the connector for its type."""
        node = await self._directory.get(node_id)
        if node is None:
            raise ApplicationError(
                f"unknown node {node_id}", type="UnknownNode", non_retryable=True
            )
        url = node_system_url(
            node.node_id, node.connector_kind, node.system_url, self._simulator_url
        )
        return node, url, self._nodes.for_node_type(node.node_type)

    @activity.defn(name=ActivityName.RELEASE_TO_NODE)
    async def release_to_node(self, request: NodeReleaseInput) -> NodeReleaseResult:
        _, url, connector = await self._node(request.node_id)
        wire = ReleaseRequest.model_validate(request.model_dump())
        ack = await permanent_errors_are_final(lambda: connector.release(url, wire))
        return NodeReleaseResult(node_reference=ack.node_reference)

    @activity.defn(name=ActivityName.CANCEL_AT_NODE)
    async def cancel_at_node(self, request: NodeCancelInput) -> NodeCancelResult:
        """A 409 is the node's "too late": the parcel has left or is leaving, so the shipment is
        a real one and must not be sourced again (the workflow keeps it as shipped)."""
        _, url, connector = await self._node(request.node_id)
        try:
            ack = await connector.cancel(url, request.shipment_id, request.reason)
        except PermanentConnectorError as exc:
            if exc.status_code == 409:
                return NodeCancelResult(status=NodeCancelStatus.TOO_LATE)
            raise connector_refused(exc) from exc
        return NodeCancelResult(status=ack.status)

    @activity.defn(name=ActivityName.DISPATCH_AT_NODE)
    async def dispatch_at_node(self, request: NodeDispatchInput) -> NodeDispatchResult:
        _, url, connector = await self._node(request.node_id)
        wire = DispatchRequest.model_validate(request.model_dump())
        ack = await permanent_errors_are_final(lambda: connector.dispatch(url, wire))
        return NodeDispatchResult(status=ack.status)

    @activity.defn(name=ActivityName.BUY_LABEL)
    async def buy_label(self, request: BuyLabelInput) -> BuyLabelResult:
        node, _, _ = await self._node(request.node_id)
        label_request = LabelRequest(
            order_id=request.order_id,
            shipment_id=request.shipment_id,
            carrier=request.carrier,
            service=request.service,
            ship_from=GeoPoint(lat=node.lat, lon=node.lon),
            ship_to=request.ship_to,
            units=request.units,
        )
        label = await permanent_errors_are_final(lambda: self._carrier.buy_label(label_request))
        return BuyLabelResult(**label.model_dump())
