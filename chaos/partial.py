"""Ship-partial orders in the chaos mix (issue 14): orders with a line the network holds and a
short line it does not, sold ship-partial, so they ship what they can and wait
PARTIALLY_BACKORDERED; then a purchase order's receipt and a stock delta bring the short units
through the API, and the backorder sweep (housekeeping) completes them, kills and restarts
notwithstanding. Right after the arrivals the harness starts one housekeeping run itself, as ops
may: the Schedule skips overlapping runs, and one a worker kill stranded holds the next until its
activity times out (2 min), longer than a small run.

The SKUs are the harness's own, so no demo order competes for them: `CHAOS-ONHAND` stocked at
three warehouses (the line that goes at once), `CHAOS-PO` announced as a purchase order to
WH-MEMPHIS and received there later, `CHAOS-DELTA` brought to WH-ALLENTOWN by a delta.
"""

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from chaos.invariant import Invariant
from contracts.housekeeping import HousekeepingInput
from contracts.ids import order_workflow_id
from contracts.names import WorkflowName
from domain.orders import OrderState
from ledger.db import transaction
from ledger.stock import open_position
from ledger.tables import OrderView, Sku

SOURCE = "chaos-wms"  # the feed the receipts and deltas come from
ON_HAND_SKU = "CHAOS-ONHAND"
PO_SKU = "CHAOS-PO"
DELTA_SKU = "CHAOS-DELTA"
ON_HAND_NODES = ("WH-RENO", "WH-MEMPHIS", "WH-ALLENTOWN")
PO_NODE = "WH-MEMPHIS"
DELTA_NODE = "WH-ALLENTOWN"
CLOSED = {"COMPLETED", "CANCELLED", "REJECTED"}
WAITING = {"BACKORDERED", "PARTIALLY_BACKORDERED"}
PARTIAL_NOTE = "shipped partially"  # the start of the order's `backordered` timeline entry


@dataclass
class PartialShipments:
    """The ship-partial orders of a run, and the arrivals that complete them."""

    orders: int
    run_id: str
    order_ids: list[str] = field(default_factory=list)
    wanted: dict[str, int] = field(default_factory=dict)  # short SKU -> units ordered
    delivered_at: float | None = None  # time.monotonic() once receipt and delta are applied
    events: list[str] = field(default_factory=list)

    def register(self, engine: Engine) -> None:
        with transaction(engine) as session:
            for sku in (ON_HAND_SKU, PO_SKU, DELTA_SKU):
                if session.get(Sku, sku) is None:
                    session.add(Sku(sku=sku, name=f"Chaos {sku.lower()}", unit_price=10.0))
            session.flush()
            for node_id in ON_HAND_NODES:
                open_position(session, node_id, ON_HAND_SKU, 1000)
            open_position(session, PO_NODE, PO_SKU, 0)
            open_position(session, DELTA_NODE, DELTA_SKU, 0)

    def payloads(self, rng: random.Random, like: list[dict]) -> list[dict]:
        """`orders` ship-partial orders, each a copy of a demo order's customer and address
        with one line that can go now and one short line (half wait for the purchase order,
        half for the delta)."""
        made = []
        for i in range(self.orders):
            base = like[i % len(like)]
            short = PO_SKU if i % 2 == 0 else DELTA_SKU
            units = rng.choice([1, 2])
            self.wanted[short] = self.wanted.get(short, 0) + units
            payload = {
                **base,
                "external_id": f"{self.run_id}-partial-{i:04d}",
                "delivery_method": "home",
                "fulfilment_policy": "ship_partial",
                "lines": [
                    {"line_no": 1, "sku": ON_HAND_SKU, "quantity": 1},
                    {"line_no": 2, "sku": short, "quantity": units},
                ],
            }
            payload.pop("pickup_node_id", None)
            self.order_ids.append(order_workflow_id(payload["channel"], payload["external_id"]))
            made.append(payload)
        return made

    async def announce(self, http: httpx.AsyncClient) -> None:
        """The purchase order for the short units, expected in a week."""
        due = (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
        line = {"event_id": f"{self.run_id}-po-1", "kind": "purchase_order",
                "reference": f"PO-{self.run_id}", "line": 1, "node_id": PO_NODE, "sku": PO_SKU,
                "quantity": self.wanted.get(PO_SKU, 0), "expected_date": due}  # fmt: skip
        if line["quantity"]:
            await _post(http, f"/v1/feeds/{SOURCE}/incoming", {"lines": [line]})

    async def deliver(
        self,
        engine: Engine,
        http: httpx.AsyncClient,
        seconds: float,
        temporal_address: str,
        task_queue: str,
    ) -> None:
        """Once every ship-partial order has shipped what it could (or closed), or after
        `seconds`: the purchase order is received, the delta comes in, and a housekeeping run
        starts."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            views = self._views(engine)
            if len(views) == len(self.order_ids) and all(
                str(v.status) in WAITING | CLOSED for v in views.values()
            ):
                break
            await asyncio.sleep(0.5)
        started = time.monotonic()
        now = datetime.now(UTC).isoformat()
        if self.wanted.get(PO_SKU):
            receipt = {"event_id": f"{self.run_id}-po-r1", "kind": "purchase_order",
                       "reference": f"PO-{self.run_id}", "line": 1,
                       "quantity": self.wanted[PO_SKU], "received_at": now}  # fmt: skip
            await _post(http, f"/v1/feeds/{SOURCE}/receipts", {"receipts": [receipt]})
        if self.wanted.get(DELTA_SKU):
            delta = {"event_id": f"{self.run_id}-delta-1", "node_id": DELTA_NODE,
                     "sku": DELTA_SKU, "delta": self.wanted[DELTA_SKU], "as_of": now}  # fmt: skip
            await _post(http, f"/v1/feeds/{SOURCE}/deltas", {"deltas": [delta]})
        self.delivered_at = time.monotonic()
        await _housekeeping_now(temporal_address, task_queue, f"housekeeping-{self.run_id}-partial")
        self.events.append(
            f"received the purchase order ({self.wanted.get(PO_SKU, 0)} x {PO_SKU}) and a delta "
            f"({self.wanted.get(DELTA_SKU, 0)} x {DELTA_SKU}) for {self.orders} ship-partial "
            f"orders, in {self.delivered_at - started:.1f} s; started a housekeeping run"
        )

    def settled(self, engine: Engine) -> bool:
        """The arrivals are in, and every ship-partial order has closed or waits for a reason
        of its own (a node it excluded, or a person)."""
        if self.delivered_at is None:
            return False
        views = self._views(engine)
        return len(views) == len(self.order_ids) and all(
            _done_or_explained(v) for v in views.values()
        )

    def invariant(self, session: Session) -> Invariant:
        views = {
            v.order_id: OrderState.model_validate(v.document)
            for v in session.exec(
                select(OrderView).where(col(OrderView.order_id).in_(self.order_ids))
            )
        }
        problems = []
        if self.delivered_at is None:
            problems.append("the receipt and the delta were never sent")
        went_partially = completed = 0
        for order_id in self.order_ids:
            state = views.get(order_id)
            if state is None:
                problems.append(f"{order_id} missing from the read model")
                continue
            partial = any(
                e.event == "backordered" and e.detail.startswith(PARTIAL_NOTE)
                for e in state.timeline
            )
            went_partially += partial
            if str(state.status) == "COMPLETED":
                completed += 1
                if not partial:
                    problems.append(f"{order_id} completed without shipping partially first")
            elif not _done_or_explained(state):
                problems.append(
                    f"{order_id} {state.status} after its stock arrived, excluding no node and "
                    f"needing no one: waiting for {state.waiting_for!r}"
                )
        return Invariant.of(
            "ship-partial orders ship what can go, then complete when the receipt or delta "
            "brings the rest",
            problems,
            f"{len(self.order_ids)} ship-partial orders: {went_partially} shipped partially "
            f"first, {completed} completed after the arrivals, the rest closed or waiting with "
            "a reason",
        )

    def _views(self, engine: Engine) -> dict[str, OrderState]:
        with Session(engine) as session:
            return {
                v.order_id: OrderState.model_validate(v.document)
                for v in session.exec(
                    select(OrderView).where(col(OrderView.order_id).in_(self.order_ids))
                )
            }


def _done_or_explained(state: OrderState) -> bool:
    """Closed; or waiting because a node failed it (excluded until the exclusion runs out), or
    with a person asked."""
    if str(state.status) in CLOSED or state.attention:
        return True
    return str(state.status) in WAITING and bool(state.excluded_nodes)


async def _housekeeping_now(address: str, task_queue: str, run_id: str) -> None:
    """Started, not awaited (the sweep's retries do the rest); again while the engine is down."""
    for _ in range(120):
        try:
            client = await Client.connect(address)
            await client.start_workflow(
                WorkflowName.HOUSEKEEPING, HousekeepingInput(), id=run_id, task_queue=task_queue
            )
            return
        except WorkflowAlreadyStartedError:  # an earlier attempt's answer was lost
            return
        except Exception:  # the dev server may be the one chaos just killed
            await asyncio.sleep(0.5)
    raise RuntimeError(f"housekeeping run {run_id} never started")


async def _post(http: httpx.AsyncClient, path: str, body: dict, attempts: int = 240) -> None:
    """Until the API answers (it may be restarting); the event ids make a repeat a no-op."""
    for _ in range(attempts):
        try:
            response = await http.post(path, json=body)
        except httpx.TransportError:
            await asyncio.sleep(0.5)
            continue
        if response.status_code < 500 and response.status_code != 429:
            if not response.is_success:
                raise RuntimeError(f"{path} refused: {response.status_code} {response.text}")
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{path} never answered")
