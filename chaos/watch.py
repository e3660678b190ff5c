"""Watches the read model during the run for open orders that wait silently: neither a deadline
(when the wait escalates) nor `attention` (a person must act). An order mid-step (allocating,
releasing) has neither for a moment; one whose projection stays so for `grace` seconds is
waiting on nothing anyone will see."""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ledger.tables import OrderView

CLOSED = ("COMPLETED", "CANCELLED", "REJECTED")


@dataclass
class SilentWait:
    order_id: str
    status: str
    waiting_for: str
    seconds: float
    why: str  # "no deadline, no attention" | "deadline passed"

    def line(self) -> str:
        return (
            f"{self.order_id} {self.status} waited {self.seconds:.0f} s for "
            f"{self.waiting_for!r}: {self.why}"
        )


@dataclass
class SilentWaitWatch:
    engine: Engine
    order_ids: set[str]
    grace: float = 60.0
    every: float = 5.0
    found: dict[str, SilentWait] = field(default_factory=dict)  # first one seen per order
    _since: dict[tuple[str, int], float] = field(default_factory=dict)

    async def run(self, until: asyncio.Event) -> None:
        while not until.is_set():
            await asyncio.to_thread(self.look)
            await asyncio.sleep(self.every)

    def look(self) -> None:
        with Session(self.engine) as session:
            rows = session.exec(
                select(OrderView.order_id, OrderView.version, OrderView.document).where(
                    col(OrderView.status).not_in(CLOSED)
                )
            ).all()
        now, wall = time.monotonic(), datetime.now(UTC)
        for order_id, version, doc in rows:
            if order_id not in self.order_ids or order_id in self.found or doc.get("attention"):
                continue
            deadline = doc.get("deadline")
            overdue = (
                deadline is not None
                and (wall - datetime.fromisoformat(deadline).astimezone(UTC)).total_seconds()
                > self.grace
            )
            if deadline is not None and not overdue:
                continue
            since = self._since.setdefault((order_id, version), now)
            if now - since >= self.grace:
                self.found[order_id] = SilentWait(
                    order_id, doc.get("status", "?"), doc.get("waiting_for", ""), now - since,
                    "deadline passed" if overdue else "no deadline, no attention",
                )  # fmt: skip
