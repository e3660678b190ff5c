"""The sourcing policy a channel's orders are planned with, checkout and allocation alike.

A channel whose `inventory_aware` switch is on gets DEFAULT_POLICY with the bid prices of the
latest refresh (services.bid_prices); every other channel gets DEFAULT_POLICY itself. A channel
with `max_shipments_per_order` plans under a ruleset whose rule allows that many shipments
(ruleset_for; sourcing.rules.ruleset_with_max_shipments); every other under the default one.

The checkout's hot path must not query per request, so what this reads is cached in process,
per database engine: the set of inventory-aware channels, the channels' shipment limits, the latest run id and the policy built
from that run's prices. At most every CHECK_SECONDS one request re-reads the two small things
(the switched-on channels, the latest run id: two indexed selects), and the prices only when the
run id changed. Why a few seconds' staleness is right: prices are refreshed hourly (the
Schedule's interval) and describe the next days' scarcity, so serving the previous run's prices
for five more seconds changes nothing a customer sees; a per-request version read would cost a
query on every checkout for that nothing. Refreshes and switch changes made in this process
forget the cache at once (forget_cached_policies); other processes see them within CHECK_SECONDS.
"""

import threading
import time
import weakref
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, or_
from sqlmodel import Session, col, select

from ledger import bid_prices
from ledger.tables import Channel
from sourcing.model import Ruleset, SourcingPolicy
from sourcing.optimizer import DEFAULT_POLICY
from sourcing.rules import ruleset_with_max_shipments

CHECK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _Snapshot:
    checked_at: float  # time.monotonic()
    aware: frozenset[str]
    limits: dict[str, int]  # channel -> max_shipments_per_order, limited channels only
    run_id: str | None
    policy: SourcingPolicy


_snapshots: "weakref.WeakKeyDictionary[Engine, _Snapshot]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def policy_for(session: Session, channel: str) -> SourcingPolicy:
    """The money model for the channel's carts and orders."""
    snapshot = _snapshot(session)
    return snapshot.policy if channel in snapshot.aware else DEFAULT_POLICY


def ruleset_for(session: Session, channel: str) -> Ruleset | None:
    """The ruleset the channel's carts and orders are planned under: None (the default) unless
    the channel limits its orders' shipments."""
    return ruleset_with_max_shipments(_snapshot(session).limits.get(channel))


def latest_prices_policy(session: Session) -> tuple[str | None, SourcingPolicy]:
    """The latest run id and DEFAULT_POLICY with its prices, whichever channel asks (what-if)."""
    run_id = bid_prices.latest_run_id(session)
    if run_id is None:
        return None, DEFAULT_POLICY
    return run_id, DEFAULT_POLICY.with_bid_prices(bid_prices.prices_of(session, run_id))


def forget_cached_policies() -> None:
    with _lock:
        _snapshots.clear()


def _snapshot(session: Session) -> _Snapshot:
    engine = _engine_of(session)
    now = time.monotonic()
    cached = _snapshots.get(engine)
    if cached is not None and now - cached.checked_at < CHECK_SECONDS:
        return cached
    special = session.exec(
        select(Channel.channel, Channel.inventory_aware, Channel.max_shipments_per_order).where(
            or_(
                col(Channel.inventory_aware).is_(True),
                col(Channel.max_shipments_per_order).is_not(None),
            )
        )
    ).all()
    aware = frozenset(channel for channel, is_aware, _ in special if is_aware)
    limits = {channel: limit for channel, _, limit in special if limit is not None}
    if not aware:
        fresh = _Snapshot(now, aware, limits, None, DEFAULT_POLICY)
    else:
        run_id = bid_prices.latest_run_id(session)
        if cached is not None and cached.run_id == run_id and cached.aware:
            fresh = _Snapshot(now, aware, limits, run_id, cached.policy)
        elif run_id is None:
            fresh = _Snapshot(now, aware, limits, None, DEFAULT_POLICY)
        else:
            prices = bid_prices.prices_of(session, run_id)
            fresh = _Snapshot(now, aware, limits, run_id, DEFAULT_POLICY.with_bid_prices(prices))
    with _lock:
        _snapshots[engine] = fresh
    return fresh


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind
