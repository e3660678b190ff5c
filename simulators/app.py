"""Node and carrier simulators.

Nodes: `{base}/nodes/{node_id}/fulfillment-orders` (WMS / 3PL) and `.../pick-requests` (stores).
After a release the node calls back accepted (or rejected) and picked; after a dispatch, shipped;
the carrier then calls back delivered. Latency, rejection and failure rates are configurable, per
node behaviour can be forced (`reject`, `silent`), and `/sim/stats` counts what each shipment got,
so tests can prove nothing was released, labelled or dispatched twice.
"""

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from typing import Literal

import httpx
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from security.signatures import sign

log = logging.getLogger("opendom.simulators")

NodeMode = Literal["normal", "reject", "silent", "accept_only", "picks_only"]


class SimulatorConfig(BaseModel):
    api_url: str = "http://127.0.0.1:8000"
    # The gateway key the simulated node systems and carrier call OpenDOM with, and its secret.
    api_key: str | None = None
    signing_secret: str | None = None
    latency_seconds: float = Field(default=0.5, ge=0)
    reject_rate: float = Field(default=0.0, ge=0, le=1)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    # Chaos: a share of calls hang past the caller's timeout (then complete, as a slow partner
    # does), and a share of callbacks are delivered twice.
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    hang_seconds: float = Field(default=12.0, ge=0)
    duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int | None = None


class NodeBehaviour(BaseModel):
    mode: NodeMode = "normal"


class ReleaseBody(BaseModel):
    order_id: str
    shipment_id: str
    node_id: str
    lines: list[dict]


class DispatchBody(BaseModel):
    order_id: str
    shipment_id: str
    node_id: str
    carrier: str
    service: str
    tracking_number: str
    label_id: str


class CancelBody(BaseModel):
    reason: str = ""


class LabelBody(BaseModel):
    order_id: str
    shipment_id: str
    carrier: str
    service: str
    units: int


CALLBACK_SENDERS = 16


class _World:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.random = random.Random(config.seed)
        self.modes: dict[str, NodeMode] = {}
        self.releases: dict[str, dict] = {}
        self.labels: dict[str, dict] = {}
        self.erp: dict[str, list[dict]] = {}
        self.refused_label_orders: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.client = httpx.AsyncClient(timeout=10)
        # A partner's webhook sender has a few workers, not one per event. Unbounded, a burst
        # queued hundreds of requests inside httpx's pool, whose bookkeeping is quadratic in
        # them: half the simulators' CPU in the load benchmark.
        self.senders = asyncio.Semaphore(CALLBACK_SENDERS)

    def spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _signed(self, payload: bytes) -> dict[str, str]:
        """Signed afresh on every attempt, as a partner's webhook sender does."""
        headers = {"content-type": "application/json"}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        if self.config.signing_secret:
            timestamp = str(int(time.time()))
            headers["x-opendom-timestamp"] = timestamp
            headers["x-opendom-signature"] = sign(self.config.signing_secret, timestamp, payload)
        return headers

    async def pause(self) -> None:
        if self.config.latency_seconds:
            jitter = self.random.uniform(0.5, 1.5)
            await asyncio.sleep(self.config.latency_seconds * jitter)

    async def callback(self, path: str, body: dict) -> None:
        """Deliver a webhook like a real partner does: retry for a while, give up on 4xx."""
        url = f"{self.config.api_url}{path}"
        payload = json.dumps(body).encode()
        for attempt in range(30):
            try:
                async with self.senders:
                    response = await self.client.post(
                        url, content=payload, headers=self._signed(payload)
                    )
                if response.status_code < 500:
                    if response.status_code >= 400:
                        log.info("callback %s refused: %s", url, response.text[:200])
                    elif self.random.random() < self.config.duplicate_rate:
                        self.counts["duplicate_callbacks"] += 1
                        await self._resend(url, payload)
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(min(0.2 * 2**attempt, 5))
        log.warning("callback %s abandoned", url)

    async def _resend(self, url: str, payload: bytes) -> None:
        """The partner's sender lost our answer and delivers the same event again, signed anew."""
        with contextlib.suppress(httpx.TransportError):
            async with self.senders:
                await self.client.post(url, content=payload, headers=self._signed(payload))


class _FaultInjection:
    """Answers a share of partner calls with 503s or hangs, as real partners do. Pure ASGI:
    Starlette's `@app.middleware("http")` runs every request through extra tasks and streams."""

    def __init__(self, app: ASGIApp, world: _World) -> None:
        self.app = app
        self.world = world

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/sim"):
            await self.app(scope, receive, send)
            return
        world = self.world
        draw = world.random.random()
        if draw < world.config.failure_rate:
            world.counts["injected_failures"] += 1
            outage = JSONResponse(status_code=503, content={"error": "simulated outage"})
            await outage(scope, receive, send)
            return
        if draw < world.config.failure_rate + world.config.timeout_rate:
            # The caller gives up first; the work is still done, so its retry must be harmless.
            world.counts["injected_timeouts"] += 1
            await asyncio.sleep(world.config.hang_seconds)
        await self.app(scope, receive, send)


def create_simulator_app(config: SimulatorConfig | None = None) -> FastAPI:
    world = _World(config or SimulatorConfig())
    app = FastAPI(title="OpenDOM simulators", description=__doc__)
    app.state.world = world

    app.add_middleware(_FaultInjection, world=world)

    async def node_progress(shipment_id: str) -> None:
        release = world.releases[shipment_id]
        node_id = release["node_id"]
        mode = world.modes.get(node_id, "normal")
        if mode == "silent":
            return
        await world.pause()
        if release["status"] == "cancelled":
            return
        if mode == "reject" or world.random.random() < world.config.reject_rate:
            release["status"] = "rejected"
            await _node_event(release, "rejected", reason="stock not found on the shelf")
            return
        release["status"] = "accepted"
        await _node_event(release, "accepted")
        if mode == "accept_only":
            return
        await world.pause()
        if release["status"] == "cancelled":
            return
        release["status"] = "picked"
        await _node_event(release, "picked")

    async def ship(shipment_id: str) -> None:
        release = world.releases[shipment_id]
        await world.pause()
        if release["status"] == "cancelled" or world.modes.get(release["node_id"]) == "picks_only":
            return
        release["status"] = "shipped"
        await _node_event(release, "shipped", tracking_number=release["tracking_number"])
        await world.pause()
        await world.callback(
            f"/v1/callbacks/carriers/{release['carrier']}/events",
            {
                "order_id": release["order_id"],
                "shipment_id": shipment_id,
                "tracking_number": release["tracking_number"],
                "event": "delivered",
            },
        )

    async def _node_event(release: dict, event: str, **extra: str) -> None:
        world.counts[f"callback_{event}"] += 1
        body = {
            "order_id": release["order_id"],
            "shipment_id": release["shipment_id"],
            "event": event,
            "event_id": f"{release['shipment_id']}:{event}",
            **extra,
        }
        await world.callback(f"/v1/callbacks/nodes/{release['node_id']}/events", body)

    for resource in ("fulfillment-orders", "pick-requests"):

        @app.post(f"/nodes/{{node_id}}/{resource}", tags=["nodes"])
        async def receive_release(node_id: str, body: ReleaseBody) -> dict:
            world.counts[f"release:{body.shipment_id}"] += 1
            if body.shipment_id in world.releases:  # a retried release: same answer, no new work
                return _ack(world.releases[body.shipment_id])
            world.releases[body.shipment_id] = {
                **body.model_dump(),
                "node_id": node_id,
                "status": "received",
            }
            world.spawn(node_progress(body.shipment_id))
            return _ack(world.releases[body.shipment_id])

        @app.post(f"/nodes/{{node_id}}/{resource}/{{shipment_id}}/dispatch", tags=["nodes"])
        async def dispatch(node_id: str, shipment_id: str, body: DispatchBody) -> dict:
            release = _known(node_id, shipment_id)
            world.counts[f"dispatch:{shipment_id}"] += 1
            if release["status"] == "cancelled":
                raise HTTPException(409, f"{shipment_id} was cancelled")
            if "tracking_number" not in release:
                release.update(tracking_number=body.tracking_number, carrier=body.carrier)
                world.spawn(ship(shipment_id))
            return _ack(release)

        @app.post(f"/nodes/{{node_id}}/{resource}/{{shipment_id}}/cancel", tags=["nodes"])
        async def cancel(node_id: str, shipment_id: str, body: CancelBody) -> dict:
            release = _known(node_id, shipment_id)
            if release["status"] == "shipped":
                raise HTTPException(409, f"{shipment_id} has already shipped")
            release["status"] = "cancelled"
            world.counts["cancellations"] += 1
            return _ack(release)

    def _known(node_id: str, shipment_id: str) -> dict:
        release = world.releases.get(shipment_id)
        if release is None or release["node_id"] != node_id:
            raise HTTPException(404, f"{node_id} has no shipment {shipment_id}")
        return release

    @app.post("/carrier/v1/labels", tags=["carrier"])
    async def buy_label(body: LabelBody, idempotency_key: str = Header()) -> dict:
        world.counts[f"label_request:{idempotency_key}"] += 1
        if body.order_id in world.refused_label_orders:
            raise HTTPException(422, "address cannot be served by this carrier")
        if idempotency_key not in world.labels:
            serial = len(world.labels) + 1
            world.labels[idempotency_key] = {
                "label_id": f"LBL-{serial:07d}",
                "tracking_number": f"1Z{world.random.randrange(10**12):012d}",
                "carrier": body.carrier,
                "service": body.service,
            }
            world.counts["labels_issued"] += 1
        return world.labels[idempotency_key]

    @app.put("/sim/erp/{source}/stock-deltas", tags=["sim"])
    async def queue_erp_deltas(source: str, deltas: list[dict]) -> dict:
        """Queue deltas the simulated ERP will serve to OpenDOM's pull connector."""
        world.erp.setdefault(source, []).extend(deltas)
        return {"queued": len(world.erp[source])}

    @app.get("/erp/{source}/stock-deltas", tags=["erp"])
    async def serve_erp_deltas(source: str, after: int = 0, limit: int = 100) -> dict:
        queued = world.erp.get(source, [])
        page = queued[after : after + limit]
        return {"deltas": page, "next_cursor": str(after + len(page)) if page else None}

    @app.put("/sim/carrier/refusals/{order_id}", tags=["sim"])
    async def refuse_labels_for(order_id: str) -> dict:
        """The carrier will refuse every label for this order (an address it cannot serve)."""
        world.refused_label_orders.add(order_id)
        return {"refused": order_id}

    @app.put("/sim/config", tags=["sim"])
    async def configure(config: SimulatorConfig) -> SimulatorConfig:
        world.config = config
        return config

    @app.put("/sim/nodes/{node_id}", tags=["sim"])
    async def set_node_behaviour(node_id: str, behaviour: NodeBehaviour) -> NodeBehaviour:
        world.modes[node_id] = behaviour.mode
        return behaviour

    @app.get("/sim/stats", tags=["sim"])
    async def stats() -> dict:
        return {
            "counts": dict(world.counts),
            "labels": world.labels,
            "releases": {k: v["status"] for k, v in world.releases.items()},
        }

    return app


def _ack(release: dict) -> dict:
    return {
        "shipment_id": release["shipment_id"],
        "node_reference": f"SIM-{release['shipment_id']}",
        "status": release["status"],
    }


def create_simulator_app_from_settings() -> FastAPI:
    """Factory for `uvicorn --factory`: configured from the same settings as the rest."""
    from config import load_settings

    settings = load_settings()
    return create_simulator_app(
        SimulatorConfig(
            api_url=settings.api_url,
            latency_seconds=settings.simulator_latency_seconds,
            reject_rate=settings.simulator_reject_rate,
            failure_rate=settings.simulator_failure_rate,
            timeout_rate=settings.simulator_timeout_rate,
            duplicate_rate=settings.simulator_duplicate_rate,
            seed=settings.simulator_seed,
            api_key=settings.simulator_api_key,
            signing_secret=settings.simulator_signing_secret,
        )
    )
