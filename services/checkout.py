"""The checkout check as units of work: answer a cart from the availability cache, or from the
database in one transaction that can also hold the stock the chosen option relies on; and give a
hold back.

Both paths decide with sourcing.checkout over what allocation reads: the channel's candidates,
their calendars (services.sourcing_inputs) and the channel's policy (services.sourcing_policy).
The cache's answer is the API's hot path: it reads only memory (ledger.availability_cache).
Anything it cannot answer for certain (a hold, the cache still loading, a SKU it does not know, a
channel sourced with bid prices) goes to the database, which never oversells."""

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from domain.errors import DomainError
from domain.geo import GeoPoint
from domain.network import CandidateNode
from domain.orders import OrderLine
from ledger import holds
from ledger.availability import channel_pool
from ledger.availability_cache import AvailabilityCache, CheckoutRows, NodeTable
from ledger.db import transaction
from ledger.stock import candidate_nodes
from ledger.tables import CheckoutHold
from services import preorders
from services.catalogue import refuse_unsellable_skus
from services.references import refuse_retired_channel
from services.sourcing_inputs import CalendarColumns, profiles_with_calendars, with_calendars
from services.sourcing_policy import policy_for, ruleset_for
from sourcing.checkout import PICKUP_RADIUS_KM, CheckoutAnswer, DeliveryOptionCode, check_cart
from sourcing.model import ProcessingCalendar, Ruleset
from sourcing.optimizer import DEFAULT_POLICY, NODE_TYPES, NodeArrays, PreparedNodes
from sourcing.rules import ruleset_shipment_limit, ruleset_with_max_shipments


class OptionUnavailable(DomainError):
    """The cart cannot be held for this delivery option: it is not among the cart's options."""

    code = "option_unavailable"

    def __init__(self, option: DeliveryOptionCode) -> None:
        self.option = option
        super().__init__(f"hold_option: {option} is not available for this cart")


class HoldNotFound(DomainError):
    """No such hold, or one the caller may not see."""

    code = "hold_not_found"

    def __init__(self, hold_id: str) -> None:
        self.hold_id = hold_id
        super().__init__(f"no hold {hold_id}")


DEFAULT_HOLD_LIMIT = holds.HoldLimit()


@dataclass(frozen=True, slots=True)
class HoldTerms:
    """Hold the stock behind this option of the answer, for this long."""

    option: DeliveryOptionCode
    ttl: timedelta
    # How much of a SKU the channel's holds may keep (config: OPENDOM_MAX_HELD_SHARE_PER_CHANNEL,
    # OPENDOM_HELD_UNITS_ALWAYS_ALLOWED, with the same defaults).
    limit: holds.HoldLimit = DEFAULT_HOLD_LIMIT


@dataclass(frozen=True, slots=True)
class PlacedHold:
    """The hold placed on the terms' option, and when it ends."""

    hold_id: str
    expires_at: datetime
    option: DeliveryOptionCode


@dataclass(frozen=True, slots=True)
class CheckoutOutcome:
    answer: CheckoutAnswer
    hold: PlacedHold | None = None


def answer_from_cache(
    cache: AvailabilityCache,
    channel: str,
    lines: list[OrderLine],
    destination: GeoPoint,
    now: datetime,
    fast: bool = True,
) -> CheckoutAnswer | None:
    """The answer without a hold, from the availability cache (it trails the ledger by a
    moment); None when the database must answer (the cache still loading, or a SKU it does not
    know, which may be unknown altogether).

    The same `check_cart` as the database path, without a node object per candidate: the
    cart's candidates are read as arrays from the cache's (SKU, channel) views and handed to the
    optimizer as `PreparedNodes` (it plans from the arrays); only the pickup stores nearest the
    customer, which the checkout looks through itself, become objects. `now` is put on the
    candidates' clock as the database path does. `fast=False`: every option from `optimize`
    (sourcing.checkout.check_cart), for comparison."""
    if not cache.ready or not cache.sells_for(channel) or not cache.prices_by_default(channel):
        return None
    if not all(cache.knows(ln.sku) for ln in lines):
        return None
    found = cache.checkout_rows([ln.sku for ln in lines], channel)
    columns = cache.calendar_columns()
    static = _static_arrays(found.table, columns)
    near = cache.nearest_pickup_stores(found, lines, destination, PICKUP_RADIUS_KM).tolist()
    stores = cache.candidates_at(found, near)
    profiles, _ = profiles_with_calendars(stores, columns, now)
    nodes = PreparedNodes(profiles, _table_arrays(static, found))
    # One zone for every node: any candidate tells the clock; else those the database lists.
    if static.one_tz is not None and found.every_row.any():
        local_now = now.astimezone(static.one_tz)
    else:
        clocked = found.rows if len(static.zones) <= 1 else cache.positioned_rows(found)
        local_now = _on_nodes_clock(now, static, clocked)
    ruleset = ruleset_with_max_shipments(cache.shipment_limit(channel))
    answer = check_cart(
        lines,
        destination,
        nodes,
        local_now,
        DEFAULT_POLICY,
        found.shippable,
        ruleset=ruleset,
        channel=channel,
        fast=fast,
    )
    return None if preorders.answered_in_database(cache, channel, answer) else answer


@dataclass(frozen=True)
class _StaticArrays:
    """Per network snapshot and calendar columns: what sourcing reads of each row of the node
    table besides stock, in sourcing's own terms."""

    table: NodeTable
    columns: Mapping[str, CalendarColumns]
    types: np.ndarray
    calendars: list[ProcessingCalendar]
    calendar: np.ndarray
    zone: np.ndarray  # index into zones; -1: no calendar columns
    zones: list[str]
    node_ids: np.ndarray  # the table's, as objects: a request's rows picked without a loop
    one_zone: int | None  # every row's zone, when they share one
    one_tz: ZoneInfo | None  # that zone
    # The whole table as sourcing.optimizer.NodeArrays reads it, but for stock: the same
    # objects for every request, so that sourcing.quote works out what it reads of them once.
    every_row: NodeArrays


_STATIC: list[_StaticArrays] = []  # the last one built (the table and columns change rarely)


def _static_arrays(table: NodeTable, columns: Mapping[str, CalendarColumns]) -> _StaticArrays:
    if _STATIC and _STATIC[0].table is table and _STATIC[0].columns is columns:
        return _STATIC[0]
    templates = [
        CandidateNode(node_id, node_type, GeoPoint.model_construct(lat=0.0, lon=0.0), True, True)
        for node_id, node_type in zip(table.node_ids, table.node_types, strict=True)
    ]
    # The calendars exactly as the database path builds them (shared objects by their columns).
    profiles, _ = profiles_with_calendars(templates, columns, datetime.now(UTC))
    index: dict[int, int] = {}
    calendars: list[ProcessingCalendar] = []
    for profile in profiles:
        if id(profile.calendar) not in index:
            index[id(profile.calendar)] = len(calendars)
            calendars.append(profile.calendar)
    zones: dict[str, int] = {}
    zone = [
        zones.setdefault(columns[node_id][3], len(zones)) if node_id in columns else -1
        for node_id in table.node_ids
    ]
    types = np.array([NODE_TYPES.index(t) for t in table.node_types], dtype=int)
    calendar = np.array([index[id(p.calendar)] for p in profiles], dtype=int)
    n = len(table)
    every_row = NodeArrays(
        ids=list(table.node_ids),
        skus=[],
        types=types,
        lat=table.lat,
        lon=table.lon,
        can_ship=table.can_ship,
        can_pickup=table.can_pickup,
        stock=np.zeros((n, 0)),
        handling=np.full(n, np.nan),
        store_penalty=np.full(n, np.nan),
        capacity=np.full(n, np.inf),
        load=np.zeros(n),
        rejection_rate=np.zeros(n),
        lateness_rate=np.zeros(n),
        calendars=calendars,
        calendar=calendar,
    )
    for value in vars(every_row).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False  # shared by every request
    built = _StaticArrays(
        table=table,
        columns=columns,
        types=types,
        calendars=calendars,
        calendar=calendar,
        zone=np.array(zone, dtype=int),
        zones=list(zones),
        node_ids=np.array(table.node_ids, dtype=object),
        one_zone=zone[0] if zone and len(set(zone)) == 1 else None,
        one_tz=ZoneInfo(next(iter(zones)))
        if zone and len(set(zone)) == 1 and zone[0] >= 0
        else None,
        every_row=every_row,
    )
    _STATIC[:] = [built]
    return built


def _on_nodes_clock(now: datetime, static: _StaticArrays, rows: np.ndarray) -> datetime:
    """`now` as services.sourcing_inputs.profiles_with_calendars gives it for these nodes."""
    if static.one_zone is not None and static.one_zone >= 0 and len(rows):
        return now.astimezone(static.one_tz)  # one zone keeps one clock
    if static.one_zone is not None and len(rows):
        present = [static.one_zone]
    else:
        present = np.unique(static.zone[rows]).tolist()
    tzs = {ZoneInfo(static.zones[z]) for z in present if z >= 0}
    if len({now.astimezone(zone).utcoffset() for zone in tzs}) == 1:
        return now.astimezone(tzs.pop())
    return now


def _table_arrays(static: _StaticArrays, found: CheckoutRows) -> NodeArrays:
    """Every row of the table with the cart's stock: the nodes holding none of it are no
    candidates to the optimizer (they hold no line), and the other fields are the snapshot's
    own arrays. The same plans as over `_node_arrays`, the same tie-break order."""
    every = static.every_row
    return NodeArrays(
        ids=every.ids,
        skus=found.skus,
        types=every.types,
        lat=every.lat,
        lon=every.lon,
        can_ship=every.can_ship,
        can_pickup=every.can_pickup,
        stock=found.every_row.astype(float),
        handling=every.handling,
        store_penalty=every.store_penalty,
        capacity=every.capacity,
        load=every.load,
        rejection_rate=every.rejection_rate,
        lateness_rate=every.lateness_rate,
        calendars=every.calendars,
        calendar=every.calendar,
    )


def _node_arrays(static: _StaticArrays, found: CheckoutRows) -> NodeArrays:
    """The candidates as `sourcing.optimizer.node_arrays` reads them from their profiles
    (NodeProfile.of with the node's calendar: no cost overrides, capacity or reliability)."""
    rows = found.rows
    n = len(rows)
    table = found.table
    nothing = np.zeros(n)
    unset = np.full(n, np.nan)
    return NodeArrays(
        ids=static.node_ids[rows].tolist(),
        skus=found.skus,
        types=static.types[rows],
        lat=table.lat[rows],
        lon=table.lon[rows],
        can_ship=table.can_ship[rows],
        can_pickup=table.can_pickup[rows],
        stock=found.units.astype(float),
        handling=unset,
        store_penalty=unset,
        capacity=np.full(n, np.inf),
        load=nothing,
        rejection_rate=nothing,
        lateness_rate=nothing,
        calendars=static.calendars,
        calendar=static.calendar[rows],
    )


def check_in_database(
    engine: Engine,
    channel: str,
    lines: list[OrderLine],
    destination: GeoPoint,
    now: datetime,
    hold: HoldTerms | None = None,
) -> CheckoutOutcome:
    """The answer from the ledger, and with `hold` a new hold on the chosen option's stock, in
    one transaction. UnknownReference for unknown or inactive SKUs; OptionUnavailable if the option is not
    among the answer's; InsufficientStock if another cart took the units meanwhile;
    HoldLimitExceeded if the channel's holds would keep more of a SKU than `hold.limit`."""
    with Session(engine) as session:
        refuse_retired_channel(session, channel)
        refuse_unsellable_skus(session, {ln.sku for ln in lines}, "lines.sku")
    with transaction(engine) as tx:
        answer, placed = run_checkout_check(tx, channel, lines, destination, now, hold)
    return CheckoutOutcome(answer, placed)


def run_checkout_check(
    session: Session,
    channel: str,
    lines: list[OrderLine],
    destination: GeoPoint,
    now: datetime,
    hold: HoldTerms | None = None,
    hold_id: str | None = None,
) -> tuple[CheckoutAnswer, PlacedHold | None]:
    """Read the channel's view, decide (sourcing.checkout), and with `hold` hold the stock the
    chosen option relies on, in the caller's transaction: as hold `hold_id` (placing the same id
    again is a no-op), a new id if None."""
    pool = channel_pool(session, channel)
    candidates = candidate_nodes(session, {ln.sku for ln in lines}, pool)
    profiles, local_now = with_calendars(session, candidates, now)
    policy = policy_for(session, channel)
    ruleset = ruleset_for(session, channel)  # the channel's shipment limit, if any
    answer = check_cart(
        lines, destination, profiles, local_now, policy, ruleset=ruleset, channel=channel
    )
    answer = preorders.with_preorder_option(
        session, channel, pool, lines, destination, profiles, local_now, policy, answer
    )
    answer = _within_shipment_limit(answer, ruleset)
    if hold is None:
        return answer, None
    preorders.refuse_preorder_hold(hold.option)
    option = next((o for o in answer.options if o.code == hold.option), None)
    if option is None:
        raise OptionUnavailable(hold.option)
    hold_lines = [
        holds.HoldRequestLine(ln.line_no, shipment.node_id, ln.sku, ln.quantity)
        for shipment in option.shipments
        for ln in shipment.lines
    ]
    hold_id = hold_id or f"H-{uuid.uuid4().hex[:16]}"
    placed = holds.place_hold(
        session,
        hold_id,
        channel,
        hold_lines,
        now + hold.ttl,
        hold.limit,
        option=hold.option,
        promised_date=option.promised_date,
    )
    return answer, PlacedHold(placed.hold_id, placed.expires_at, hold.option)


def _within_shipment_limit(answer: CheckoutAnswer, ruleset: Ruleset | None) -> CheckoutAnswer:
    """The answer without an option from more nodes than the channel's limit: the stock options
    are planned within it, a pre-order (each SKU from the node its incoming stock reaches first)
    is not."""
    limit = ruleset_shipment_limit(ruleset)
    if limit is None:
        return answer
    kept = [o for o in answer.options if len({s.node_id for s in o.shipments}) <= limit]
    if len(kept) == len(answer.options):
        return answer
    return CheckoutAnswer.model_construct(lines=answer.lines, options=kept)


def release_hold(engine: Engine, hold_id: str, may_release: Callable[[str], bool]) -> int:
    """The shopper left: give the units back now instead of at expiry. Idempotent; returns the
    units released (0 once ended). `may_release(channel)` is the caller's rule for the hold's
    channel: a hold it may not see is HoldNotFound, as if it did not exist."""
    with transaction(engine) as tx:
        found = tx.get(CheckoutHold, hold_id)
        if found is None or not may_release(found.channel):
            raise HoldNotFound(hold_id)
        return holds.release_hold(tx, hold_id)
