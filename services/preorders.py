"""Pre-orders as units of work: the checkout's `preorder` option for a channel that sells them,
and intake's check of an order sold with it.

A channel with `allow_preorders` that cannot serve a cart from stock now is offered the date the
incoming stock covers it (sourcing.preorder), after the units the orders already waiting for the
SKU still want: the backordered orders of every channel (stock is shared, and the backorder sweep
hands arrivals to them by priority and age, pre-order or not) count against what comes first. An
order sold with the option is accepted, waits BACKORDERED with the checkout's date as its promise,
and the backorder sweep allocates it when the receipt lands.

What is promised is not reserved: like a quote from stock without a hold, two carts checked at
the same moment may both be quoted the last incoming units; each order that waits then counts
for the next quote (from the read model, which hears of a backorder as the order waits).
"""

import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.availability import ChannelPoolRule
from domain.errors import DomainError
from domain.geo import GeoPoint
from domain.incoming import sells_from
from domain.lifecycle import MOVED_SHIPMENT_STATUSES
from domain.orders import BACKORDERED_STATUSES, DeliveryOptionCode, OrderLine
from ledger.availability_cache import AvailabilityCache
from ledger.incoming import open_incoming
from ledger.tables import Channel, OrderView
from sourcing.checkout import CheckoutAnswer
from sourcing.model import NodeProfile, SourcingPolicy
from sourcing.preorder import IncomingAt, preorder_option

# The backordered orders read per quote, highest priority and oldest first (as the sweep reads
# them): the demand ahead of a new pre-order. Beyond it the quote may promise too early.
WAITING_SCAN = 5000
# How long a process trusts its list of the channels that sell pre-orders (the cache path asks
# it for short carts only; a configuration change is seen within this).
CHECK_SECONDS = 5.0


class PreordersNotAllowed(DomainError):
    """An order sold as a pre-order on a channel that does not take them."""

    code = "preorders_not_allowed"

    def __init__(self, channel: str) -> None:
        self.channel = channel
        super().__init__(
            f"delivery_option: channel {channel} does not take pre-orders (allow_preorders)"
        )


class PreorderWithoutDate(DomainError):
    """A pre-order that does not say the date its checkout promised."""

    code = "preorder_without_date"

    def __init__(self) -> None:
        super().__init__("promised_date: a pre-order names the date its checkout promised")


class PreorderNotHeld(DomainError):
    """A hold asked for the pre-order option: there is no stock yet to hold."""

    code = "preorder_not_held"

    def __init__(self) -> None:
        super().__init__(
            "hold_option: a pre-order holds no stock; submit the order with delivery_option "
            "preorder and the option's promised_date"
        )


def allows_preorders(session: Session, channel: str) -> bool:
    configured = session.get(Channel, channel)
    return configured is not None and configured.allow_preorders


def refuse_preorder(session: Session, channel: str, promised: date | None) -> None:
    """Intake, for an order sold as a pre-order: accepted only on a channel that allows them,
    with the date its checkout promised."""
    if not allows_preorders(session, channel):
        raise PreordersNotAllowed(channel)
    if promised is None:
        raise PreorderWithoutDate()


def refuse_preorder_hold(option: DeliveryOptionCode) -> None:
    if option == DeliveryOptionCode.PREORDER:
        raise PreorderNotHeld()


def needs_preorder_option(answer: CheckoutAnswer) -> bool:
    """Whether the stock options leave the cart unserved: a line short, or no option at all."""
    return not answer.options or not answer.sellable


def with_preorder_option(
    session: Session,
    channel: str,
    pool: ChannelPoolRule | None,
    lines: Sequence[OrderLine],
    destination: GeoPoint,
    profiles: Sequence[NodeProfile],
    now: datetime,
    policy: SourcingPolicy,
    answer: CheckoutAnswer,
) -> CheckoutAnswer:
    """The answer with the `preorder` option added when the channel sells pre-orders, the stock
    options leave the cart unserved and the incoming stock covers it (`profiles` and `now`: the
    checkout's candidates and clock)."""
    if not needs_preorder_option(answer) or not allows_preorders(session, channel):
        return answer
    skus = {ln.sku for ln in lines}
    incoming = [
        IncomingAt(f.node_id, f.sku, f.expected_date, f.units)
        for f in open_incoming(session, skus)
        if sells_from(f.node_id, f.node_type, pool)
    ]
    if not incoming:
        return answer
    option = preorder_option(
        lines, destination, profiles, incoming, units_waiting(session, skus), now, policy.transit
    )
    if option is None:
        return answer
    return CheckoutAnswer.model_construct(lines=answer.lines, options=[*answer.options, option])


def units_waiting(session: Session, skus: Iterable[str]) -> dict[str, int]:
    """Per SKU, the units the backordered orders still want (no shipment on its way carries
    them): what arrivals go to before a new pre-order."""
    wanted = set(skus)
    moved = {str(s) for s in MOVED_SHIPMENT_STATUSES}
    document = col(OrderView.document)
    # The lines and shipments only: parsing whole documents (timelines and all) would be most
    # of the checkout's time with thousands of orders waiting.
    rows = session.execute(
        select(document["order"]["lines"], document["shipments"])
        .where(col(OrderView.status).in_([str(s) for s in BACKORDERED_STATUSES]))
        .order_by(col(OrderView.priority).desc(), col(OrderView.created_at))
        .limit(WAITING_SCAN)
    )
    waiting: dict[str, int] = {}
    for lines, shipments in rows:
        carried: dict[int, int] = {}
        for shipment in shipments or []:
            if shipment["status"] in moved:
                continue
            for line in shipment["lines"]:
                carried[line["line_no"]] = carried.get(line["line_no"], 0) + line["quantity"]
        for line in lines or []:
            if line["sku"] in wanted:
                units = line["quantity"] - carried.get(line["line_no"], 0)
                if units > 0:
                    waiting[line["sku"]] = waiting.get(line["sku"], 0) + units
    return waiting


# --- the cache path's gate ---

_channels: "weakref.WeakKeyDictionary[Engine, tuple[float, frozenset[str]]]" = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def answered_in_database(cache: AvailabilityCache, channel: str, answer: CheckoutAnswer) -> bool:
    """The cache path's gate: a cart its stock options leave unserved, for a channel that sells
    pre-orders, is answered by the database (the option reads incoming stock and the waiting
    orders, which the cache does not keep). Other carts cost nothing here."""
    if not needs_preorder_option(answer):
        return False
    return channel in preorder_channels(cache._engine)


def preorder_channels(engine: Engine) -> frozenset[str]:
    """The channels that sell pre-orders, re-read at most every CHECK_SECONDS per process."""
    now = time.monotonic()
    with _lock:
        cached = _channels.get(engine)
    if cached is not None and now - cached[0] < CHECK_SECONDS:
        return cached[1]
    with Session(engine) as session:
        found = frozenset(
            session.exec(select(Channel.channel).where(col(Channel.allow_preorders).is_(True)))
        )
    with _lock:
        _channels[engine] = (now, found)
    return found


def forget_preorder_channels() -> None:
    with _lock:
        _channels.clear()
