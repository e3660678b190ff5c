"""Incoming stock as units of work: a batch of purchase order and transfer lines (created,
changed, cancelled), a batch of receipts, and the hook other code reacts to arrivals with.

Like the stock feeds (services.feeds): all or nothing by default, every refused line named
(`lines[3]: unknown node WH-X`), or with `FeedMode.PARTIAL` the good lines applied and the
refused ones reported; idempotent by (source, event id); a refused line's event id is not
recorded, so the source may send it again corrected. Unknown nodes, SKUs and lines are refused
before the write transaction; what only the ledger can tell (a quantity below what was already
received, an over-receipt) inside it, and refusing then rolls the whole batch back.
"""

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from ledger import incoming
from ledger.catalogue import known_nodes, known_skus
from ledger.db import transaction
from ledger.incoming import IncomingAction, IncomingChange, LineKey, Receipt
from ledger.tables import IncomingKind
from services.feeds import FeedMode, FeedOutcome, RefusedLine, _refuse_or_keep, is_ahead

log = logging.getLogger("opendom.incoming")


class PushedIncomingLine(Protocol):
    @property
    def event_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def node_id(self) -> str | None: ...
    @property
    def sku(self) -> str | None: ...
    @property
    def quantity(self) -> int | None: ...
    @property
    def expected_date(self) -> date | None: ...
    @property
    def from_node_id(self) -> str | None: ...


class PushedReceipt(Protocol):
    @property
    def event_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def quantity(self) -> int: ...
    @property
    def received_at(self) -> datetime: ...


def after_receipt(engine: Engine, skus: set[str]) -> None:
    """Called after receipts commit, with the SKUs whose on hand went up. Nothing happens here
    yet: it is the one place to react to goods arriving (retrying the orders waiting for them),
    so a receipt from the API, the ERP pull or a test all reach it."""


def push_incoming(
    engine: Engine,
    source: str,
    lines: Sequence[PushedIncomingLine],
    mode: FeedMode = FeedMode.ALL_OR_NOTHING,
) -> FeedOutcome:
    """Create or change (action `upsert`) or cancel purchase order and transfer lines.
    FeedRefused naming every refused line: unknown node, origin or SKU, a transfer without its
    origin, no expected date on a new line, or what the ledger refuses."""
    refused, good = _known_changes(engine, lines)
    _refuse_or_keep(refused, mode, "lines")
    with transaction(engine) as tx:
        outcome = incoming.apply_changes(tx, source, [c for _, c in good])
        refused += _refused_inside(good, outcome.reasons)
        _refuse_or_keep(refused, mode, "lines")  # raising here rolls the whole batch back
    return FeedOutcome(
        applied=outcome.applied,
        replayed=len(outcome.replayed),
        refused=sorted(refused, key=lambda r: r.line),
    )


def push_receipts(
    engine: Engine,
    source: str,
    receipts: Sequence[PushedReceipt],
    mode: FeedMode = FeedMode.ALL_OR_NOTHING,
    now: datetime | None = None,
) -> FeedOutcome:
    """Goods received against incoming lines, in full or in part: in one transaction incoming
    goes down and on hand up, and each line counts what it received. FeedRefused naming the
    line for an unknown line, for receiving more than it has open, and for a receipt dated in
    the future (a local time sent as UTC: a snapshot counted before that time would add the
    goods on top of its own count). `stale` counts receipts a later snapshot of the node
    already counted (incoming closed, on hand left as counted)."""
    with Session(engine) as session:
        stored = incoming.lines_by_key(session, (_key(r) for r in receipts))
    refused: list[RefusedLine] = []
    good: list[tuple[int, Receipt]] = []
    for i, r in enumerate(receipts):
        line = stored.get(_key(r))
        if line is None:
            refused.append(RefusedLine(line=i, reason=f"no {_key(r)}"))
            continue
        if is_ahead(r.received_at, now):
            refused.append(RefusedLine(line=i, reason=f"received_at {r.received_at} is ahead"))
            continue
        good.append(
            (i, Receipt(r.event_id, _key(r), line.node_id, line.sku, r.quantity, r.received_at))
        )
    _refuse_or_keep(refused, mode, "receipts")
    with transaction(engine) as tx:
        outcome = incoming.apply_receipts(tx, source, [rc for _, rc in good])
        refused += _refused_inside(good, outcome.reasons)
        _refuse_or_keep(refused, mode, "receipts")
    if outcome.received_skus:
        _call_after_receipt(engine, outcome.received_skus)
    return FeedOutcome(
        applied=outcome.applied,
        replayed=len(outcome.replayed),
        stale=len(outcome.stale),
        refused=sorted(refused, key=lambda r: r.line),
    )


def _call_after_receipt(engine: Engine, skus: set[str]) -> None:
    try:
        after_receipt(engine, skus)
    except Exception:
        # The receipt is committed and the answer must say so; whatever reacts to arrivals
        # has its own retries (and support can retry an order by hand).
        log.exception("after_receipt failed for %s; the receipts stand", sorted(skus))


def _key(line: PushedReceipt | PushedIncomingLine) -> LineKey:
    return LineKey(str(line.kind), line.reference, line.line)


def _refused_inside(
    good: Iterable[tuple[int, IncomingChange | Receipt]], reasons: dict[str, str]
) -> list[RefusedLine]:
    return [
        RefusedLine(line=i, reason=reasons[x.event_id]) for i, x in good if x.event_id in reasons
    ]


def _known_changes(
    engine: Engine, lines: Sequence[PushedIncomingLine]
) -> tuple[list[RefusedLine], list[tuple[int, IncomingChange]]]:
    """Lines naming a node, origin, SKU or (to cancel) a line we do not have are refused, and
    so are a transfer without its origin and a new line without its quantity or date. A cancel
    may omit the node and SKU: the stored line's are used."""
    with Session(engine) as session:
        stored = incoming.lines_by_key(session, (_key(ln) for ln in lines))
        wanted = {n for ln in lines for n in (ln.node_id, ln.from_node_id) if n}
        nodes = known_nodes(session, wanted | {s.node_id for s in stored.values()})
        skus = known_skus(
            session, {ln.sku for ln in lines if ln.sku} | {s.sku for s in stored.values()}
        )
    refused: list[RefusedLine] = []
    good: list[tuple[int, IncomingChange]] = []
    earlier: set[LineKey] = set()  # created earlier in this batch
    for i, ln in enumerate(lines):
        key = _key(ln)
        known = stored.get(key)
        exists = known is not None or key in earlier
        node_id = ln.node_id or (known.node_id if known else None)
        sku = ln.sku or (known.sku if known else None)
        reason = _refusal(ln, key, exists, node_id, sku, nodes, skus)
        if reason is not None:
            refused.append(RefusedLine(line=i, reason=reason))
            continue
        assert node_id is not None and sku is not None  # _refusal refuses a line without them
        earlier.add(key)
        good.append(
            (
                i,
                IncomingChange(
                    event_id=ln.event_id, action=str(ln.action), key=key, node_id=node_id,
                    sku=sku, quantity=ln.quantity or 0, expected_date=ln.expected_date,
                    from_node_id=ln.from_node_id,
                ),
            )
        )  # fmt: skip
    return refused, good


def _refusal(
    ln: PushedIncomingLine,
    key: LineKey,
    exists: bool,
    node_id: str | None,
    sku: str | None,
    nodes: set[str],
    skus: set[str],
) -> str | None:
    if ln.action == IncomingAction.CANCEL and not exists:
        return f"no {key} to cancel"
    if node_id is None or node_id not in nodes:
        return f"unknown node {node_id}" if node_id else f"{key}: node_id is required"
    if sku is None or sku not in skus:
        return f"unknown SKU {sku}" if sku else f"{key}: sku is required"
    if ln.from_node_id is not None and ln.from_node_id not in nodes:
        return f"unknown origin node {ln.from_node_id}"
    if ln.from_node_id is not None and ln.from_node_id == node_id:
        return f"{key}: a transfer cannot come from the node it goes to"
    if ln.action == IncomingAction.CANCEL:
        return None
    if not ln.quantity:
        return f"{key}: quantity is required"
    if not exists and ln.expected_date is None:
        return f"{key}: a new line needs its expected_date"
    if not exists and ln.kind == IncomingKind.TRANSFER and ln.from_node_id is None:
        return f"{key}: a transfer names the node it comes from (from_node_id)"
    return None
