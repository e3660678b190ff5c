"""The checkout check as units of work: answer a cart from the availability cache, or from the
database in one transaction that can also hold the stock the chosen option relies on; and give a
hold back.

Both paths decide with sourcing.checkout over what allocation reads: the channel's candidates,
their calendars (services.sourcing_inputs) and the channel's policy (services.sourcing_policy).
The cache's answer is the API's hot path: it reads only memory (ledger.availability_cache).
Anything it cannot answer for certain (a hold, the cache still loading, a SKU it does not know, a
channel sourced with bid prices) goes to the database, which never oversells."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from domain.errors import DomainError
from domain.geo import GeoPoint
from domain.orders import OrderLine
from ledger import holds
from ledger.availability import channel_pool
from ledger.availability_cache import AvailabilityCache
from ledger.db import transaction
from ledger.stock import candidate_nodes
from ledger.tables import CheckoutHold
from services.catalogue import refuse_unsellable_skus
from services.references import refuse_retired_channel
from services.sourcing_inputs import profiles_with_calendars, with_calendars
from services.sourcing_policy import policy_for
from sourcing.checkout import CheckoutAnswer, DeliveryOptionCode, check_cart
from sourcing.optimizer import DEFAULT_POLICY


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
) -> CheckoutAnswer | None:
    """The answer without a hold, from the availability cache (it trails the ledger by a
    moment); None when the database must answer (the cache still loading, or a SKU it does not
    know, which may be unknown altogether)."""
    if not cache.ready or not cache.sells_for(channel) or not cache.prices_by_default(channel):
        return None
    if not all(cache.knows(ln.sku) for ln in lines):
        return None
    candidates = cache.candidates([ln.sku for ln in lines], channel)
    profiles, local_now = profiles_with_calendars(candidates, cache.calendar_columns(), now)
    return check_cart(lines, destination, profiles, local_now, DEFAULT_POLICY, channel=channel)


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
    answer = check_cart(lines, destination, profiles, local_now, policy, channel=channel)
    if hold is None:
        return answer, None
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


def release_hold(engine: Engine, hold_id: str, may_release: Callable[[str], bool]) -> int:
    """The shopper left: give the units back now instead of at expiry. Idempotent; returns the
    units released (0 once ended). `may_release(channel)` is the caller's rule for the hold's
    channel: a hold it may not see is HoldNotFound, as if it did not exist."""
    with transaction(engine) as tx:
        found = tx.get(CheckoutHold, hold_id)
        if found is None or not may_release(found.channel):
            raise HoldNotFound(hold_id)
        return holds.release_hold(tx, hold_id)
