"""Checkout holds: they take stock out of ATP, expire by themselves, and convert to orders."""

from datetime import UTC, datetime, timedelta

import pytest

from ledger import holds
from ledger.audit import ledger_imbalances
from ledger.db import transaction
from ledger.errors import InsufficientStock
from tests.support.ledger_fixtures import position, seed

NOW = datetime.now(UTC)


def place(engine, hold_id: str, qty: int, expires_at: datetime, node: str = "N1") -> None:
    with transaction(engine) as session:
        holds.place_hold(session, hold_id, "web", [holds.HoldRequestLine(1, node, "TEE", qty)],
                         expires_at)  # fmt: skip


def test_a_hold_takes_units_out_of_what_others_can_hold(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 3})
    place(ledger_engine, "H1", 2, NOW + timedelta(minutes=5))

    with pytest.raises(InsufficientStock):
        place(ledger_engine, "H2", 2, NOW + timedelta(minutes=5))

    assert position(ledger_engine, "N1") == (3, 0, 2)


def test_placing_the_same_hold_twice_holds_once(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 3})

    place(ledger_engine, "H1", 2, NOW + timedelta(minutes=5))
    place(ledger_engine, "H1", 2, NOW + timedelta(minutes=5))

    assert position(ledger_engine, "N1") == (3, 0, 2)


def test_expired_holds_give_their_units_back_once(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 3})
    place(ledger_engine, "old", 1, NOW - timedelta(seconds=1))
    place(ledger_engine, "fresh", 1, NOW + timedelta(minutes=5))

    with transaction(ledger_engine) as session:
        assert holds.expire_holds(session, NOW) == ["old"]
    with transaction(ledger_engine) as session:
        assert holds.expire_holds(session, NOW) == []

    assert position(ledger_engine, "N1") == (3, 0, 1)


def test_converting_a_hold_moves_its_units_to_the_order_without_a_window(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 2})
    place(ledger_engine, "H1", 2, NOW + timedelta(minutes=5))

    with transaction(ledger_engine) as session:
        holds.convert_hold(session, "H1", "O1", {"N1": "O1-S1"}, NOW)

    assert position(ledger_engine, "N1") == (2, 2, 0)
    with pytest.raises(holds.HoldNotActive), transaction(ledger_engine) as session:
        holds.convert_hold(session, "H1", "O2", {"N1": "O2-S1"}, NOW)
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []


def test_an_expired_hold_cannot_be_converted(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 2})
    place(ledger_engine, "H1", 1, NOW - timedelta(seconds=1))

    with pytest.raises(holds.HoldNotActive), transaction(ledger_engine) as session:
        holds.convert_hold(session, "H1", "O1", {"N1": "O1-S1"}, NOW)

    assert position(ledger_engine, "N1") == (2, 0, 1)


def test_expiry_and_a_shopper_releasing_a_due_hold_at_the_same_time_do_not_deadlock(
    ledger_engine,
) -> None:
    import threading

    from sqlmodel import col, select

    from ledger.tables import CheckoutHold

    seed(ledger_engine, {"N1": 10})
    past = datetime.now(UTC) - timedelta(seconds=1)
    place(ledger_engine, "H1", 1, past)
    place(ledger_engine, "H2", 1, past)  # both due, both on the same position
    shopper_has_h2 = threading.Event()
    errors: list[BaseException] = []

    def shopper() -> None:
        try:
            with transaction(ledger_engine) as session:
                # The shopper's release is under way: it holds H2 and will need the position.
                session.exec(
                    select(CheckoutHold).where(col(CheckoutHold.hold_id) == "H2").with_for_update()
                ).one()
                shopper_has_h2.set()
                threading.Event().wait(1.0)  # the expiry is now waiting on H2
                holds.release_hold(session, "H2")
        except BaseException as exc:
            errors.append(exc)

    def expiry() -> None:
        shopper_has_h2.wait()
        try:
            with transaction(ledger_engine) as session:
                holds.expire_holds(session, datetime.now(UTC))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=shopper), threading.Thread(target=expiry)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert position(ledger_engine, "N1") == (10, 0, 0)  # both holds ended, each once
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []
