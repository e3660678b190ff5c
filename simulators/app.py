"""Node, carrier, ERP and PIM simulators.

Nodes: `{base}/nodes/{node_id}/fulfillment-orders` (WMS / 3PL) and `.../pick-requests` (stores).
After a release the node calls back accepted (or rejected) and picked; after a dispatch, shipped;
the carrier then calls back delivered. Latency, rejection and failure rates are configurable, per
node behaviour can be forced (`reject`, `silent`, ...: see NodeMode) or drawn per shipment
(`ships_despite_cancel_rate`, `reject_after_pick_rate`), the carrier can be taken down for a while
(`PUT /sim/carrier/outage`), and `/sim/stats` counts what each shipment got and the units the
nodes really shipped per order line, so tests can prove nothing was released, labelled,
dispatched or shipped twice.

PIM: `GET /pim/catalogue?cursor=` pages the demo catalogue (the demo SKUs with weights and
dimensions) in connectors.pim's format; `PUT /sim/pim/{name}/items` loads or changes items of
another catalogue, served at `/pim/{name}/catalogue`, so a test can serve a bad item.
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
from stack.demo_data import DEMO_SKUS

log = logging.getLogger("opendom.simulators")

# normal: accepted, picked, shipped once dispatched. reject: rejected at once. silent: never
# answers. accept_only: accepted, never picked. picks_only: picked, never ships.
# ships_despite_cancel: a WMS that picks, packs and ships in one step without a word, so the
# cancel of a late shipment finds the parcel gone: it answers 409 "already shipped" and sends
# shipped. rejects_after_pick: accepted, picked, then rejected (damage found at pack); a dispatch
# after that is refused and nothing ships.
NodeMode = Literal[
    "normal", "reject", "silent", "accept_only", "picks_only",
    "ships_despite_cancel", "rejects_after_pick",
]  # fmt: skip


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
    # Chaos: shares of releases (to nodes in normal mode) that behave as the node mode of that
    # name. Drawn from the shipment id, so a run's choice does not depend on timing.
    ships_despite_cancel_rate: float = Field(default=0.0, ge=0, le=1)
    reject_after_pick_rate: float = Field(default=0.0, ge=0, le=1)
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


class CarrierOutage(BaseModel):
    seconds: float = Field(ge=0)
    # Down from the next call instead of now: the outage then refuses at least one call
    # whatever the callers were doing meanwhile.
    from_next_call: bool = False


class LabelBody(BaseModel):
    order_id: str
    shipment_id: str
    carrier: str
    service: str
    units: int


CALLBACK_SENDERS = 16
PIM_PAGE_SIZE = 5  # small, so the embedded stack's first pull shows paging
DEMO_PIM = "demo"
# Demo catalogue attributes the demo data has no place for: weight (kg), L x W x H (cm).
DEMO_SKU_SIZES: dict[str, tuple[float, float, float, float]] = {
    "TEE-WHT-M": (0.2, 30, 25, 2),
    "TEE-BLK-L": (0.22, 32, 26, 2),
    "HOODIE-GRY-M": (0.6, 35, 30, 6),
    "JEANS-32-32": (0.7, 35, 28, 5),
    "SNEAKER-42": (1.1, 33, 21, 12),
    "SNEAKER-44": (1.2, 35, 22, 13),
    "CAP-NAVY": (0.1, 25, 20, 12),
    "SOCKS-3PK": (0.15, 20, 12, 3),
    "JACKET-RAIN-L": (0.9, 40, 32, 8),
    "BAG-TOTE": (0.3, 40, 38, 1),
    "BOTTLE-750": (0.35, 8, 8, 26),
    "BEANIE-RED": (0.1, 22, 20, 4),
}


class _PimCatalogue:
    """A PIM's product list in the order its items last changed: a changed item gets a new
    change number, so a cursor (the last change number seen) brings it back on a later page."""

    def __init__(self, page_size: int = PIM_PAGE_SIZE) -> None:
        self.page_size = page_size
        self.latest: dict[str, tuple[int, dict]] = {}  # sku -> (change number, item)
        self.changes = 0

    def put(self, items: list[dict]) -> None:
        for item in items:
            self.changes += 1
            key = str(item.get("sku", f"#{self.changes}"))
            self.latest[key] = (self.changes, item)

    def page(self, cursor: int) -> dict:
        later = sorted((c for c in self.latest.values() if c[0] > cursor), key=lambda c: c[0])
        page = later[: self.page_size]
        return {
            "items": [item for _, item in page],
            "next_cursor": str(page[-1][0] if page else cursor),
            "has_more": len(later) > len(page),
        }


def _demo_catalogue() -> _PimCatalogue:
    catalogue = _PimCatalogue()
    catalogue.put(
        [
            {"sku": sku, "name": name, "unit_price": price, "weight_kg": size[0],
             "length_cm": size[1], "width_cm": size[2], "height_cm": size[3]}
            for sku, (name, price) in DEMO_SKUS.items()
            for size in [DEMO_SKU_SIZES.get(sku, (0.5, 30, 20, 10))]
        ]
    )  # fmt: skip
    return catalogue


class _World:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.random = random.Random(config.seed)
        self.modes: dict[str, NodeMode] = {}
        self.releases: dict[str, dict] = {}
        self.labels: dict[str, dict] = {}
        # Per ERP source, its changes in the order it made them: ("delta" | "incoming", line).
        # One log, so a cursor is one position in it whatever the mix of lines.
        self.erp: dict[str, list[tuple[str, dict]]] = {}
        self.pim: dict[str, _PimCatalogue] = {DEMO_PIM: _demo_catalogue()}
        self.refused_label_orders: set[str] = set()
        self.carrier_down_until = 0.0  # time.monotonic(); labels answer 503 until then
        self.carrier_outage_armed: float | None = None  # seconds, from the next carrier call
        # Units the node systems really sent out, per order and line: the ground truth a double
        # shipment shows in, whatever the workflow believes.
        self.shipped_units: dict[str, Counter[int]] = {}
        # The carrier's delivered scans, by shipment: the status code OpenDOM last answered.
        self.delivered_scans: dict[str, int | None] = {}
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

    def behaviour(self, release: dict) -> NodeMode:
        """The node's mode as it is now (tests switch it mid-run), else the shipment's draw."""
        mode = self.modes.get(release["node_id"], "normal")
        return mode if mode != "normal" else release["drawn"]

    def draw_behaviour(self, shipment_id: str) -> NodeMode:
        draw = random.Random(f"{self.config.seed}:{shipment_id}").random()
        if draw < self.config.reject_after_pick_rate:
            return "rejects_after_pick"
        if draw < self.config.reject_after_pick_rate + self.config.ships_despite_cancel_rate:
            return "ships_despite_cancel"
        return "normal"

    def record_shipped(self, release: dict) -> None:
        release["status"] = "shipped"
        units = self.shipped_units.setdefault(release["order_id"], Counter())
        for line in release["lines"]:
            units[int(line["line_no"])] += int(line["quantity"])

    async def callback(self, path: str, body: dict) -> int | None:
        """Deliver a webhook like a real partner does: retry for a while, give up on 4xx.
        The status code of the answer it stopped at; None when abandoned."""
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
                    return response.status_code
            except httpx.TransportError:
                pass
            await asyncio.sleep(min(0.2 * 2**attempt, 5))
        log.warning("callback %s abandoned", url)
        return None

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
        carrier = scope["path"].startswith("/carrier/")
        if carrier and world.carrier_outage_armed is not None:
            world.carrier_down_until = time.monotonic() + world.carrier_outage_armed
            world.carrier_outage_armed = None
        if carrier and time.monotonic() < world.carrier_down_until:
            world.counts["carrier_outage_503"] += 1
            down = JSONResponse(status_code=503, content={"error": "carrier is down"})
            await down(scope, receive, send)
            return
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
        mode = world.behaviour(release)
        if mode in ("silent", "ships_despite_cancel"):
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
        if mode != "rejects_after_pick":
            return
        await world.pause()
        if release["status"] in ("cancelled", "shipped"):
            return
        release["status"] = "rejected"
        world.counts["rejected_after_pick"] += 1
        await _node_event(release, "rejected", reason="damaged at packing")

    async def ship(shipment_id: str) -> None:
        release = world.releases[shipment_id]
        await world.pause()
        if release["status"] in ("cancelled", "rejected") or world.behaviour(release) in (
            "picks_only",
            "rejects_after_pick",  # the rejection is on its way: this parcel never leaves
        ):
            return
        world.record_shipped(release)
        await _node_event(release, "shipped", tracking_number=release["tracking_number"])
        await world.pause()
        world.delivered_scans[shipment_id] = None
        world.delivered_scans[shipment_id] = await world.callback(
            f"/v1/callbacks/carriers/{release['carrier']}/events",
            {
                "order_id": release["order_id"],
                "shipment_id": shipment_id,
                "tracking_number": release["tracking_number"],
                "event": "delivered",
            },
        )

    async def ship_unannounced(shipment_id: str) -> None:
        """The parcel a ships_despite_cancel node sent out with its own carrier account."""
        release = world.releases[shipment_id]
        await _node_event(release, "shipped", tracking_number=release["tracking_number"])

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
                "drawn": world.draw_behaviour(body.shipment_id),
            }
            world.spawn(node_progress(body.shipment_id))
            return _ack(world.releases[body.shipment_id])

        @app.post(f"/nodes/{{node_id}}/{resource}/{{shipment_id}}/dispatch", tags=["nodes"])
        async def dispatch(node_id: str, shipment_id: str, body: DispatchBody) -> dict:
            release = _known(node_id, shipment_id)
            world.counts[f"dispatch:{shipment_id}"] += 1
            if release["status"] in ("cancelled", "rejected"):
                raise HTTPException(409, f"{shipment_id} was {release['status']}")
            if "tracking_number" not in release:
                release.update(tracking_number=body.tracking_number, carrier=body.carrier)
                world.spawn(ship(shipment_id))
            return _ack(release)

        @app.post(f"/nodes/{{node_id}}/{resource}/{{shipment_id}}/cancel", tags=["nodes"])
        async def cancel(node_id: str, shipment_id: str, body: CancelBody) -> dict:
            release = _known(node_id, shipment_id)
            late = world.behaviour(release) == "ships_despite_cancel"
            if late and release["status"] == "received":
                world.counts["shipped_despite_cancel"] += 1
                release["tracking_number"] = f"NODE-{shipment_id}"
                world.record_shipped(release)
                world.spawn(ship_unannounced(shipment_id))
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
        world.erp.setdefault(source, []).extend(("delta", d) for d in deltas)
        return {"queued": len(world.erp[source])}

    @app.put("/sim/erp/{source}/incoming", tags=["sim"])
    async def queue_erp_incoming(source: str, lines: list[dict]) -> dict:
        """Queue purchase order and transfer lines (as POST /v1/feeds/{source}/incoming takes
        them, a bad one too) the simulated ERP will serve in the `incoming` list of its pages,
        after the deltas already queued."""
        world.erp.setdefault(source, []).extend(("incoming", ln) for ln in lines)
        return {"queued": len(world.erp[source])}

    @app.get("/erp/{source}/stock-deltas", tags=["erp"])
    async def serve_erp_deltas(source: str, after: int = 0, limit: int = 100) -> dict:
        queued = world.erp.get(source, [])
        page = queued[after : after + limit]
        served: dict = {
            "deltas": [line for what, line in page if what == "delta"],
            "next_cursor": str(after + len(page)) if page else None,
        }
        incoming = [line for what, line in page if what == "incoming"]
        if incoming:  # a page without any looks as an ERP that knows none sends it
            served["incoming"] = incoming
        return served

    @app.put("/sim/pim/{name}/items", tags=["sim"])
    async def put_pim_items(name: str, items: list[dict], page_size: int | None = None) -> dict:
        """Add or change items of the simulated PIM's catalogue `name`, as they will be served
        (a bad item too); each becomes the catalogue's latest change."""
        catalogue = world.pim.setdefault(name, _PimCatalogue())
        if page_size is not None:
            catalogue.page_size = max(1, page_size)
        catalogue.put(items)
        return {"items": len(catalogue.latest), "changes": catalogue.changes}

    @app.get("/pim/catalogue", tags=["pim"])
    async def serve_demo_catalogue(cursor: str | None = None) -> dict:
        return _pim_page(DEMO_PIM, cursor)

    @app.get("/pim/{name}/catalogue", tags=["pim"])
    async def serve_pim_catalogue(name: str, cursor: str | None = None) -> dict:
        return _pim_page(name, cursor)

    def _pim_page(name: str, cursor: str | None) -> dict:
        catalogue = world.pim.get(name)
        if catalogue is None:
            raise HTTPException(404, f"no catalogue {name}")
        if cursor is not None and not cursor.isdigit():
            raise HTTPException(400, f"cursor {cursor!r} is not one this PIM gave")
        return catalogue.page(int(cursor or 0))

    @app.put("/sim/carrier/refusals/{order_id}", tags=["sim"])
    async def refuse_labels_for(order_id: str) -> dict:
        """The carrier will refuse every label for this order (an address it cannot serve)."""
        world.refused_label_orders.add(order_id)
        return {"refused": order_id}

    @app.put("/sim/carrier/outage", tags=["sim"])
    async def carrier_outage(outage: CarrierOutage) -> CarrierOutage:
        """The carrier answers every call 503 for this long, from now or from its next call (0
        ends an outage)."""
        if outage.from_next_call:
            world.carrier_outage_armed = outage.seconds
        else:
            world.carrier_down_until = time.monotonic() + outage.seconds
        return outage

    @app.get("/sim/config", tags=["sim"])
    async def current_config() -> SimulatorConfig:
        return world.config

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
            # shipments whose node behaved otherwise than normal, and how
            "behaviours": {
                k: b for k, v in world.releases.items() if (b := world.behaviour(v)) != "normal"
            },
            "shipped_units": {o: dict(units) for o, units in world.shipped_units.items()},
            "delivered_scans": world.delivered_scans,
            "in_flight": len(world.tasks),
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
