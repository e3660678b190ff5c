"""The faults of issue 12 the harness adds beside kills and connector faults: nodes that ship
after a late cancel or reject after pick (drawn by the simulators), the carrier down for a while,
a bad line in a pulled ERP feed, an order re-sent after its closed workflow was deleted, and a
support desk that moves late shipments away from their node."""

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ledger.db import transaction
from ledger.tables import FeedSource, OrderView, StockPosition
from stack.temporal_cli import temporal_cli_path

ERP_SOURCE = "erp-chaos"
LATE_SHIPPER = "ships_despite_cancel"


async def configure_node_faults(
    sim: httpx.AsyncClient, ships_despite_cancel_rate: float, reject_after_pick_rate: float
) -> None:
    """The simulators start from Settings, which has no place for these rates."""
    config = (await sim.get("/sim/config")).json()
    config.update(
        ships_despite_cancel_rate=ships_despite_cancel_rate,
        reject_after_pick_rate=reject_after_pick_rate,
    )
    (await sim.put("/sim/config", json=config)).raise_for_status()


async def take_the_carrier_down(sim: httpx.AsyncClient, seconds: float) -> None:
    """From the carrier's next call: a worker killed meanwhile must not let it pass unseen."""
    outage = {"seconds": seconds, "from_next_call": True}
    (await sim.put("/sim/carrier/outage", json=outage)).raise_for_status()


@dataclass
class ErpFeed:
    """A pulled ERP feed (housekeeping polls it every few seconds) whose first page carries a
    line for a SKU nobody knows between good ones; a second page follows later, so a feed
    stuck on the bad line shows too."""

    good: list[str] = field(default_factory=list)  # event ids that must be applied, once each
    bad: list[str] = field(default_factory=list)  # event ids that must be refused
    queued: int = 0

    def register(self, engine: Engine, simulator_url: str) -> None:
        with transaction(engine) as session:
            url = f"{simulator_url}/erp/{ERP_SOURCE}/stock-deltas"
            session.add(FeedSource(source=ERP_SOURCE, url=url))

    async def queue_page(self, engine: Engine, sim: httpx.AsyncClient, bad_line: bool) -> None:
        with Session(engine) as session:
            positions = session.exec(
                select(StockPosition).order_by(col(StockPosition.node_id), col(StockPosition.sku))
            ).all()
        now = datetime.now(UTC).isoformat()
        page = []
        for n, p in enumerate(random.Random(self.queued).sample(list(positions), 3)):
            if bad_line and n == 1:
                page.append(self._line(p.node_id, "NO-SUCH-SKU", now, self.bad))
            page.append(self._line(p.node_id, p.sku, now, self.good))
        (await sim.put(f"/sim/erp/{ERP_SOURCE}/stock-deltas", json=page)).raise_for_status()

    def _line(self, node_id: str, sku: str, as_of: str, into: list[str]) -> dict:
        self.queued += 1
        event_id = f"{ERP_SOURCE}-{self.queued}"
        into.append(event_id)
        return {"event_id": event_id, "node_id": node_id, "sku": sku, "delta": 3, "as_of": as_of}


@dataclass
class Resubmission:
    """A channel re-sending an order whose closed workflow Temporal no longer has (deleted, as
    retention does): the API must answer it as the same order and start nothing."""

    order_id: str | None = None
    deleted: bool = False
    status_code: int | None = None
    answer: dict = field(default_factory=dict)

    async def run(
        self,
        engine: Engine,
        http: httpx.AsyncClient,
        temporal_address: str,
        payloads: dict[str, dict],
        seconds: float,
    ) -> None:
        deadline = time.monotonic() + seconds
        while self.order_id is None and time.monotonic() < deadline:
            with Session(engine) as session:
                self.order_id = session.exec(
                    select(OrderView.order_id)
                    .where(col(OrderView.order_id).in_(list(payloads)))
                    .where(col(OrderView.status) == "COMPLETED")
                    .order_by(col(OrderView.order_id))
                ).first()
            if self.order_id is None:
                await asyncio.sleep(1.0)
        if self.order_id is None:
            return
        self.deleted = await _delete_workflow(temporal_address, self.order_id, deadline)
        for _ in range(60):
            try:
                response = await http.post("/v1/orders", json=payloads[self.order_id])
            except httpx.TransportError:  # the API may be restarting
                await asyncio.sleep(1.0)
                continue
            if response.status_code < 500:
                self.status_code = response.status_code
                self.answer = response.json()
                return
            await asyncio.sleep(1.0)


async def _delete_workflow(address: str, workflow_id: str, deadline: float) -> bool:
    """`temporal workflow delete`, then until the server no longer describes it (deletion is
    asynchronous)."""
    cli = temporal_cli_path()
    common = ["--workflow-id", workflow_id, "--address", address]
    # Asked again while it fails: the dev server may be the one chaos just killed.
    while await _cli(cli, "workflow", "delete", "--yes", *common) != 0:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(1.0)
    while time.monotonic() < deadline:
        if await _gone(address, workflow_id):
            return True
        await asyncio.sleep(0.5)
    return False


async def _gone(address: str, workflow_id: str) -> bool:
    """NOT_FOUND from the server; a server that does not answer proves nothing."""
    try:
        client = await Client.connect(address)
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        return exc.status == RPCStatusCode.NOT_FOUND
    except RuntimeError:  # could not connect
        return False
    return False


async def _cli(*args: str) -> int:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait()


class LateShipmentDesk:
    """Support moving shipments whose node has said nothing for a while (`reallocate` away from
    that node), as ops do before the SLA would. A share is left to the SLA, so both ways of
    moving a shipment meet a node that shipped it regardless."""

    def __init__(
        self, http: httpx.AsyncClient, sim: httpx.AsyncClient, share: float, patience: float
    ) -> None:
        self.http = http
        self.sim = sim
        self.share = share
        self.patience = patience
        self.outcomes: Counter[str] = Counter()
        self._first_seen: dict[str, float] = {}
        self._done: set[str] = set()

    async def run(self, until: asyncio.Event) -> None:
        while not until.is_set():
            with contextlib.suppress(httpx.TransportError):  # the API restarting: next round
                await self._round()
            await asyncio.sleep(1.0)

    async def _round(self) -> None:
        stats = (await self.sim.get("/sim/stats")).json()
        now = time.monotonic()
        for sid, behaviour in stats["behaviours"].items():
            if behaviour != LATE_SHIPPER or sid in self._done:
                continue
            if random.Random(sid).random() >= self.share:
                self._done.add(sid)
                self.outcomes["left to the SLA"] += 1
                continue
            if stats["releases"].get(sid) != "received":
                self._done.add(sid)  # the SLA moved it first
                self.outcomes["moved by the SLA first"] += 1
                continue
            if now - self._first_seen.setdefault(sid, now) < self.patience:
                continue
            await self._move(sid)

    async def _move(self, sid: str) -> None:
        order_id = sid.rsplit("-S", 1)[0]
        order = await self.http.get(f"/v1/orders/{order_id}")
        shipment = next(
            (s for s in order.json().get("shipments", []) if s["shipment_id"] == sid), None
        )
        if shipment is None:
            return  # not in the read model yet
        response = await self.http.post(
            f"/v1/orders/{order_id}/reallocate",
            json={"reason": "node silent: moved by support", "node_id": shipment["node_id"]},
        )
        if response.status_code >= 500:
            return  # asked again next round
        self._done.add(sid)
        self.outcomes[
            f"{'reallocated' if response.is_success else 'refused'} ({response.status_code})"
        ] += 1
