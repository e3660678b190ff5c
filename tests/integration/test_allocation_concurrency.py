"""Allocation under true concurrency (audit M7), on real SQLite and PostgreSQL: two orders of
one channel racing for its pool share, two attempts of one order's allocation overlapping (a
first attempt that outlived its start-to-close timeout while Temporal ran the retry), and a
release racing such an attempt.

Each test pauses one transaction at the point the race needs, by wrapping the service's own
re-check (services.allocation._still_visible), and lets the other run meanwhile. On SQLite the
second writer waits for the first (one writer at a time); on PostgreSQL only the locks the
service takes keep them apart."""

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from domain.geo import GeoPoint
from domain.orders import DeliveryMethod, OrderLine
from domain.sla import uniform_sla_policy
from ledger import stock
from ledger.db import transaction
from ledger.errors import InsufficientStock
from ledger.tables import ChannelPool, Node
from services import allocation
from services.allocation import Allocation, AllocationRequest
from tests.support.ledger_fixtures import position, seed

SLA = uniform_sla_policy(60)
PAUSE = 2.0  # how long a paused transaction waits for the other before going on alone


def _request(order_id: str, quantity: int, channel: str = "web") -> AllocationRequest:
    return AllocationRequest(
        order_id=order_id,
        lines=[OrderLine(line_no=1, sku="TEE", quantity=quantity)],
        destination=GeoPoint(lat=0, lon=0),
        delivery_method=DeliveryMethod.HOME,
        channel=channel,
    )


def _run(target: Callable[[], Any], into: list[object]) -> threading.Thread:
    def body() -> None:
        try:
            into.append(target())
        except BaseException as exc:  # the test asserts on what each thread ended with
            into.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_two_orders_of_a_channel_never_take_more_than_its_pool_share_together(
    ledger_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(ledger_engine, {"WH-A": 100})
    with transaction(ledger_engine) as session:
        session.add(ChannelPool(channel="market", share_by_node_type={"warehouse": 0.3}))
    both_checked = threading.Barrier(2)
    recheck = allocation._still_visible

    def checked_then_wait(*args: Any) -> None:
        recheck(*args)
        # Both orders past the pool re-check before either reserves; a broken barrier means
        # the other order is waiting for this one's locks.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait(timeout=PAUSE)

    monkeypatch.setattr(allocation, "_still_visible", checked_then_wait)
    outcomes: list[object] = []
    threads = [
        _run(
            lambda o=o: allocation.allocate(ledger_engine, SLA, _request(o, 30, "market")), outcomes
        )
        for o in ("o-1", "o-2")
    ]
    for thread in threads:
        thread.join(timeout=30)

    reserved = [o for o in outcomes if isinstance(o, Allocation) and o.shipments]
    assert len(outcomes) == 2 and len(reserved) == 1, outcomes
    others = [o for o in outcomes if o not in reserved]
    assert isinstance(others[0], InsufficientStock) or others[0].backordered, others
    assert position(ledger_engine, "WH-A") == (100, 30, 0)  # 30 % of 100, taken once


def test_two_overlapping_attempts_of_one_order_reserve_its_line_at_one_node_only(
    ledger_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(ledger_engine, {"WH-NEAR": 5, "WH-FAR": 5})
    with transaction(ledger_engine) as session:
        far = session.get(Node, "WH-FAR")
        assert far is not None
        far.lat = 10.0
        session.add(far)
    first_checked, second_done = threading.Event(), threading.Event()
    recheck = allocation._still_visible

    def first_attempt_stalls(*args: Any) -> None:
        recheck(*args)
        if not first_checked.is_set():  # only the first attempt stalls before reserving
            first_checked.set()
            second_done.wait(timeout=PAUSE)

    monkeypatch.setattr(allocation, "_still_visible", first_attempt_stalls)
    outcomes: list[object] = []
    first = _run(lambda: allocation.allocate(ledger_engine, SLA, _request("o-1", 1)), outcomes)
    assert first_checked.wait(timeout=10)
    # While the first attempt stalls, WH-NEAR leaves service: the retry plans on WH-FAR.
    with transaction(ledger_engine) as session:
        near = session.get(Node, "WH-NEAR")
        assert near is not None
        near.active = False
        session.add(near)
    second = _run(lambda: allocation.allocate(ledger_engine, SLA, _request("o-1", 1)), outcomes)
    second.join(timeout=30)
    second_done.set()
    first.join(timeout=30)

    assert all(isinstance(o, Allocation) for o in outcomes), outcomes
    with transaction(ledger_engine) as session:
        rows = stock.active_reservations(session, "o-1")
        held_at = sorted((r.line_no, r.node_id) for r in rows)
    assert len(held_at) == 1, held_at  # line 1 reserved once, at one node
    assert {tuple(s.node_id for s in o.shipments) for o in outcomes} == {(held_at[0][1],)}
    assert position(ledger_engine, "WH-NEAR")[1] + position(ledger_engine, "WH-FAR")[1] == 1


def test_a_release_during_an_unfinished_allocation_attempt_releases_what_it_reserves(
    ledger_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workflow gave up on a stalled attempt and cancelled the order: the release must not
    miss the reservation that attempt is about to commit."""
    seed(ledger_engine, {"WH-A": 5})
    attempt_checked, release_done = threading.Event(), threading.Event()
    recheck = allocation._still_visible

    def attempt_stalls(*args: Any) -> None:
        recheck(*args)
        attempt_checked.set()
        release_done.wait(timeout=PAUSE)

    monkeypatch.setattr(allocation, "_still_visible", attempt_stalls)
    outcomes: list[object] = []
    attempt = _run(lambda: allocation.allocate(ledger_engine, SLA, _request("o-1", 2)), outcomes)
    assert attempt_checked.wait(timeout=10)
    released: list[object] = []
    release = _run(lambda: allocation.release_reservations(ledger_engine, "o-1"), released)
    release.join(timeout=30)
    release_done.set()
    attempt.join(timeout=30)

    assert released == [2], (released, outcomes)
    assert position(ledger_engine, "WH-A") == (5, 0, 0)  # nothing left reserved for o-1
