"""A node system whose answers a test scripts: it takes releases and dispatches, answers cancels
as told (200, or 409 "too late"), and sends nothing by itself: the test posts the node's events
(`Stack.signed_post`) in the order and at the moment the scenario needs."""

from collections import Counter

from fastapi import FastAPI, HTTPException
from sqlalchemy import Engine

from ledger.db import transaction
from ledger.tables import Node
from stack.servers import ServerThread


class ScriptedNodeSystem:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()  # "<operation>:<shipment id>"
        self.cancel_answer = 200
        self.app = FastAPI()
        for resource in ("fulfillment-orders", "pick-requests"):
            self._routes(resource)
        self._server = ServerThread(self.app)

    def _routes(self, resource: str) -> None:
        @self.app.post(f"/nodes/{{node_id}}/{resource}")
        async def release(node_id: str, body: dict) -> dict:
            return self._ack("release", body["shipment_id"], "received")

        @self.app.post(f"/nodes/{{node_id}}/{resource}/{{shipment_id}}/dispatch")
        async def dispatch(node_id: str, shipment_id: str, body: dict) -> dict:
            return self._ack("dispatch", shipment_id, "dispatched")

        @self.app.post(f"/nodes/{{node_id}}/{resource}/{{shipment_id}}/cancel")
        async def cancel(node_id: str, shipment_id: str, body: dict) -> dict:
            self.calls[f"cancel:{shipment_id}"] += 1
            if self.cancel_answer == 409:
                raise HTTPException(409, f"{shipment_id} has already shipped")
            return {"shipment_id": shipment_id, "status": "cancelled"}

    def _ack(self, operation: str, shipment_id: str, status: str) -> dict:
        self.calls[f"{operation}:{shipment_id}"] += 1
        return {"shipment_id": shipment_id, "status": status}

    def start(self) -> "ScriptedNodeSystem":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def serve(self, engine: Engine, node_id: str) -> None:
        """Point the node at this system (before its first order: the worker caches it)."""
        with transaction(engine) as session:
            node = session.get(Node, node_id)
            assert node is not None
            node.system_url = f"{self._server.url}/nodes/{node_id}"
            session.add(node)
