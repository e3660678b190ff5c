"""Backorders that resolve themselves: which backordered orders to retry now that stock arrived.

A unit of work of the housekeeping run (activities.backorders sends each order picked here its
RETRY update). Read-only: it writes nothing, so a retried or concurrent sweep can only pick
again what an order then refuses (its retry validator: a retry under way, or the order moved on).

An order is picked when, since the read model last heard from it,
- stock of one of its SKUs became more available anywhere (a movement that raised on hand less
  reserved less held: a feed delta or snapshot, a receipt, an adjustment, a reservation or a
  hold given back), or one of its node exclusions ran out, and
- every line it still waits for (a ship-partial order: any of them) is available to its
  channel now, each whole at one node that may serve it (active, in the channel's pool,
  shipping or the order's pickup store, not excluded by the order) or divided between such
  nodes, as allocation needs it: within the shipment limit its allocation plans under
  (sourcing.rules.shipment_limit: the order's allow_split / max_splits, the ruleset's
  max_splits and keep_lines_together), so an order the allocation could not divide is
  neither retried for it nor sets units aside ahead of lower-priority orders.
Orders are taken by priority (highest first), then age (oldest first), and what an order picked
here would take is set aside for it, so one unit that arrived retries one order, not every order
that wants it. The check is the cheap part of allocation; the order's own allocation decides,
and a retry that finds nothing leaves the order backordered as it was.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from domain.availability import ChannelPoolRule, PositionFigures, visible_to_channel
from domain.lifecycle import MOVED_SHIPMENT_STATUSES
from domain.orders import BACKORDERED_STATUSES, DeliveryMethod, FulfilmentPolicy
from ledger.availability import channel_pool, positions_for
from ledger.tables import Node, OrderView, StockMovement
from services.sourcing_policy import ruleset_for
from sourcing.model import Ruleset, SourcingOrder
from sourcing.rules import DEFAULT_RULESET, shipment_limit

# A movement this much older than the order's last projection still counts as new to it: the
# order's allocation read the stock a moment before it published, and a unit that arrived in
# between must not wait for the hourly re-check. An order retried for nothing is retried at
# most once more for the same movement (its next projection is later than this margin).
NEWS_MARGIN = timedelta(seconds=5)
# SQL IN lists are kept this short.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class BackorderRetry:
    """A backordered order to retry, and why (its RETRY reason)."""

    order_id: str
    reason: str
    # What the order had seen when picked: one retry per order and sighting, however many sweeps
    # pick it (a stuck order is not sent a new update every run).
    seen: str = ""


@dataclass(frozen=True, slots=True)
class _Waiting:
    """What the sweep needs of a backordered order's read-model document (an OrderState dump),
    read field by field: validating thousands of whole documents (timelines and all) on every
    housekeeping run would be most of the sweep's time."""

    order_id: str
    channel: str
    pickup_node_id: str | None  # a pickup order's store, which may serve it without shipping
    seen_at: datetime  # the read model's last projection of the order
    # The newest movement id its last allocation could have seen (OrderState
    # .stock_seen_movement; None: not recorded, the order's dates are compared instead).
    seen_movement: int | None
    missing: dict[int, tuple[str, int]]  # line_no -> (sku, units not yet allocated)
    excluded_nodes: list[str]
    excluded_at: dict[str, datetime]
    ships_partial: bool = False  # the order ships what can go now (FulfilmentPolicy)
    allow_split: bool = True  # as SourcingOrder reads them: the order's own shipment limit
    max_splits: int | None = None


def orders_to_retry(
    engine: Engine,
    limit: int,
    forget_exclusions_after: timedelta,
    now: datetime | None = None,
    scan: int = 2000,
    ruleset: Ruleset | None = None,
) -> list[BackorderRetry]:
    """At most `limit` backordered orders to retry now, highest priority and oldest first,
    among the first `scan` backordered orders in that order. `ruleset` is the one their
    allocation plans under (services.allocation.plan_allocation's); None: each order's channel's,
    as the allocation reads it (services.sourcing_policy.ruleset_for: its shipment limit)."""
    now = now or datetime.now(UTC)
    with Session(engine) as session:
        waiting = _backordered(session, scan)
        if not waiting:
            return []
        skus = sorted({sku for w in waiting for sku, _ in w.missing.values()})
        since = min(w.seen_at for w in waiting) - NEWS_MARGIN
        seen = [w.seen_movement for w in waiting if w.seen_movement is not None]
        raised = _availability_raised(session, skus, since)
        raised_ids = _availability_raised_by_id(session, skus, min(seen)) if seen else {}
        positions: dict[str, list[PositionFigures]] = {}
        for chunk in _chunks(skus):
            for figures in positions_for(session, chunk):
                positions.setdefault(figures.sku, []).append(figures)
        nodes = {
            n.node_id: n.can_ship
            for n in session.exec(select(Node).where(col(Node.active).is_(True)))
        }
        pools: dict[str, ChannelPoolRule | None] = {}
        rulesets: dict[str, Ruleset] = {}
        claimed: dict[tuple[str, str], int] = {}  # (node, sku) -> units set aside this sweep
        picked: list[BackorderRetry] = []
        for order in waiting:
            if len(picked) >= limit:
                break
            arrived = sorted(
                {
                    sku
                    for sku, _ in order.missing.values()
                    if _arrived_since(order, sku, raised, raised_ids)
                }
            )
            expired = _exclusions_expired(order, forget_exclusions_after, now)
            if not arrived and not expired:
                continue  # nothing changed for it since it last looked
            channel = order.channel
            if channel not in pools:
                pools[channel] = channel_pool(session, channel)
                rulesets[channel] = ruleset or ruleset_for(session, channel) or DEFAULT_RULESET
            taken = _available_whole(
                order,
                positions,
                nodes,
                pools[channel],
                claimed,
                forget_exclusions_after,
                now,
                limit=_shipment_limit(order, rulesets[channel]),
            )
            if taken is None:
                continue
            for key, units in taken.items():
                claimed[key] = claimed.get(key, 0) + units
            seen = order.seen_movement if order.seen_movement is not None else order.seen_at
            picked.append(BackorderRetry(order.order_id, _reason(arrived, expired), str(seen)))
        return picked


def _backordered(session: Session, scan: int) -> list[_Waiting]:
    rows = session.exec(
        select(OrderView.document, OrderView.updated_at)
        .where(col(OrderView.status).in_([str(status) for status in BACKORDERED_STATUSES]))
        .order_by(
            col(OrderView.priority).desc(), col(OrderView.created_at), col(OrderView.order_id)
        )
        .limit(scan)
    ).all()
    waiting = []
    for document, updated_at in rows:
        missing = _missing_lines(document)
        if not missing:
            continue
        order = document["order"]
        pickup = order.get("delivery_method") == DeliveryMethod.PICKUP.value
        waiting.append(
            _Waiting(
                order_id=order["order_id"],
                channel=order["channel"],
                pickup_node_id=order.get("pickup_node_id") if pickup else None,
                seen_at=_utc(updated_at),
                seen_movement=document.get("stock_seen_movement"),
                ships_partial=order.get("fulfilment_policy") == FulfilmentPolicy.SHIP_PARTIAL,
                allow_split=order.get("allow_split", True) is not False,
                max_splits=order.get("max_splits"),
                missing=missing,
                excluded_nodes=list(document.get("excluded_nodes") or []),
                excluded_at={
                    node_id: _utc(datetime.fromisoformat(at))
                    for node_id, at in (document.get("excluded_at") or {}).items()
                },
            )
        )
    return waiting


def _missing_lines(document: dict) -> dict[int, tuple[str, int]]:
    """The units of each line no shipment on its way (or shipped) carries: what the order's
    next allocation must find."""
    moved = {str(status) for status in MOVED_SHIPMENT_STATUSES}
    carried: dict[int, int] = {}
    for shipment in document.get("shipments") or []:
        if shipment["status"] in moved:
            continue
        for line in shipment["lines"]:
            carried[line["line_no"]] = carried.get(line["line_no"], 0) + line["quantity"]
    missing = {}
    for line in document["order"]["lines"]:
        units = line["quantity"] - carried.get(line["line_no"], 0)
        if units > 0:
            missing[line["line_no"]] = (line["sku"], units)
    return missing


def _availability_raised(
    session: Session, skus: Sequence[str], since: datetime
) -> dict[str, datetime]:
    """Per SKU, the last movement after `since` that made more of it sellable somewhere."""
    sellable = (
        col(StockMovement.d_on_hand) - col(StockMovement.d_reserved) - col(StockMovement.d_held)
    )
    raised: dict[str, datetime] = {}
    for chunk in _chunks(skus):
        rows = session.exec(
            select(StockMovement.sku, func.max(StockMovement.at))
            .where(
                col(StockMovement.sku).in_(chunk),
                col(StockMovement.at) > since,
                sellable > 0,
            )
            .group_by(col(StockMovement.sku))
        ).all()
        raised.update({sku: _utc(at) for sku, at in rows})
    return raised


def _arrived_since(
    order: _Waiting, sku: str, raised: dict[str, datetime], raised_ids: dict[str, int]
) -> bool:
    """Whether more of `sku` became sellable since the order's last allocation read the stock.
    By movement id when the order recorded the newest id before that read: a receipt or delta
    written later but dated earlier (a movement's date is the business time its feed names)
    is news all the same, and an order's later projections (a shipment picked) do not hide it.
    Otherwise by date against its last projection, with NEWS_MARGIN. Neither loops: a retry's
    allocation records a newer id, or projects a later date, past the movement it was for."""
    if order.seen_movement is not None:
        return raised_ids.get(sku, 0) > order.seen_movement
    return sku in raised and raised[sku] > order.seen_at - NEWS_MARGIN


def _availability_raised_by_id(session: Session, skus: Sequence[str], after: int) -> dict[str, int]:
    """Per SKU, the id of the last movement after `after` that made more of it sellable."""
    sellable = (
        col(StockMovement.d_on_hand) - col(StockMovement.d_reserved) - col(StockMovement.d_held)
    )
    raised: dict[str, int] = {}
    for chunk in _chunks(skus):
        rows = session.exec(
            select(StockMovement.sku, func.max(StockMovement.id))
            .where(
                col(StockMovement.sku).in_(chunk),
                col(StockMovement.id) > after,
                sellable > 0,
            )
            .group_by(col(StockMovement.sku))
        ).all()
        raised.update({sku: last for sku, last in rows if last is not None})
    return raised


def _active_exclusions(order: _Waiting, forget_after: timedelta, now: datetime) -> set[str]:
    """The nodes the order still excludes. One without a time (an order started before
    exclusions expired) stays excluded until the order's own re-check forgets it."""
    excluded_at = order.excluded_at
    return {
        node_id
        for node_id in order.excluded_nodes
        if node_id not in excluded_at or now - _utc(excluded_at[node_id]) < forget_after
    }


def _exclusions_expired(order: _Waiting, forget_after: timedelta, now: datetime) -> list[str]:
    """The exclusions that ran out since the read model last heard from the order."""
    after = order.seen_at - NEWS_MARGIN
    return sorted(
        node_id
        for node_id, at in order.excluded_at.items()
        if node_id in order.excluded_nodes and after < _utc(at) + forget_after <= now
    )


def _shipment_limit(order: _Waiting, ruleset: Ruleset) -> int | None:
    """The most nodes the order's next allocation may use (None: any), as the allocation reads
    it (sourcing.rules.shipment_limit). A ruleset's later rules are fallbacks for the earlier
    ones, so its loosest rule bounds what some rule could plan."""
    # Only the two split fields are read by shipment_limit: no order worth validating is built.
    as_sourced = SourcingOrder.model_construct(
        allow_split=order.allow_split, max_splits=order.max_splits
    )
    limits = [shipment_limit(as_sourced, rule) for rule in ruleset.rules]
    return None if None in limits else max(limit for limit in limits if limit is not None)


def _available_whole(
    order: _Waiting,
    positions: dict[str, list[PositionFigures]],
    nodes: dict[str, bool],
    pool: ChannelPoolRule | None,
    claimed: dict[tuple[str, str], int],
    forget_after: timedelta,
    now: datetime,
    limit: int | None = None,
) -> dict[tuple[str, str], int] | None:
    """The units the order would take per (node, SKU), each missing line whole at one node
    (the one with the most left) or, when none holds it, divided between nodes; None if some
    line cannot be served yet. A ship-partial order ships what can go: any unit is enough.
    With a shipment `limit`, from at most that many nodes (_within_limit)."""
    excluded = _active_exclusions(order, forget_after, now)
    pickup = order.pickup_node_id
    left: dict[str, dict[str, int]] = {}  # sku -> node -> units this order may still take
    for sku in {sku for sku, _ in order.missing.values()}:
        at = left[sku] = {}
        for figures in positions.get(sku, ()):
            node_id = figures.node_id
            if node_id in excluded or node_id not in nodes:
                continue
            if not (nodes[node_id] or node_id == pickup):
                continue
            units = visible_to_channel(figures, pool) - claimed.get((node_id, sku), 0)
            if units > 0:
                at[node_id] = units
    if limit is not None:
        return _within_limit(order, left, limit)
    taken: dict[tuple[str, str], int] = {}
    for sku, units in order.missing.values():
        at = left[sku]
        best = max(
            (node_id for node_id, free in at.items() if free >= units),
            key=lambda node_id: (at[node_id], node_id),
            default=None,
        )
        if best is not None:
            at[best] -= units
            taken[(best, sku)] = taken.get((best, sku), 0) + units
            continue
        # No node holds it whole: allocation divides a line between nodes (most units first).
        if sum(at.values()) < units and not order.ships_partial:
            return None
        for node_id in sorted(at, key=lambda n: (-at[n], n)):
            if units <= 0:
                break
            piece = min(at[node_id], units)
            at[node_id] -= piece
            units -= piece
            taken[(node_id, sku)] = taken.get((node_id, sku), 0) + piece
    return {key: units for key, units in taken.items() if units > 0} or None


def _within_limit(
    order: _Waiting, left: dict[str, dict[str, int]], limit: int
) -> dict[tuple[str, str], int] | None:
    """The units the order would take from at most `limit` nodes, lines divided between them
    as allocation divides them: nodes taken one by one, each the one that serves most of what
    is still missing (exact for a limit of one node: some node must hold every missing line).
    None if they cannot serve it all and the order is not ship-partial, or serve nothing."""
    wanted: dict[str, int] = {}
    for sku, units in order.missing.values():
        wanted[sku] = wanted.get(sku, 0) + units
    candidates = sorted({node_id for at in left.values() for node_id in at})
    taken: dict[tuple[str, str], int] = {}
    for _ in range(limit):
        if not any(wanted.values()):
            break

        def serves(node_id: str) -> int:
            return sum(min(left[sku].get(node_id, 0), units) for sku, units in wanted.items())

        best = max(candidates, key=serves, default=None)  # the first by id on a tie
        if best is None or serves(best) == 0:
            break
        candidates.remove(best)
        for sku, units in wanted.items():
            piece = min(left[sku].get(best, 0), units)
            if piece > 0:
                taken[(best, sku)] = piece
                wanted[sku] = units - piece
    if any(wanted.values()) and not order.ships_partial:
        return None
    return taken or None


def _reason(arrived: list[str], expired: list[str]) -> str:
    parts = []
    if arrived:
        parts.append(f"stock arrived: {', '.join(arrived)}")
    if expired:
        parts.append(f"exclusion expired: {', '.join(expired)}")
    return "; ".join(parts)[:500]  # RetryInput.reason's limit


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _utc(moment: datetime) -> datetime:
    """SQLite gives datetimes back without their zone; every one the ledger writes is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
