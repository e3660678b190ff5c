"""The stock ledger on real SQLite and PostgreSQL: atomic, idempotent, balanced."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from ledger import stock
from ledger.audit import ledger_imbalances
from ledger.db import transaction
from ledger.errors import InsufficientStock, NegativeStock
from tests.support.ledger_fixtures import position, seed


def request(order: str, node: str, qty: int, line: int = 1) -> stock.ReservationRequest:
    return stock.ReservationRequest(order, f"{order}-S1", line, node, "TEE", qty)


def test_reservation_takes_only_what_is_available_above_safety_stock(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 5}, safety=2)

    with transaction(ledger_engine) as session:
        stock.reserve(session, [request("O1", "N1", 3)])
    with pytest.raises(InsufficientStock), transaction(ledger_engine) as session:
        stock.reserve(session, [request("O2", "N1", 1)])

    assert position(ledger_engine, "N1") == (5, 3, 0)


def test_multi_line_reservation_is_all_or_nothing(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 5, "N2": 1})

    with pytest.raises(InsufficientStock), transaction(ledger_engine) as session:
        stock.reserve(session, [request("O1", "N1", 2, line=1), request("O1", "N2", 2, line=2)])

    assert position(ledger_engine, "N1") == (5, 0, 0)
    with transaction(ledger_engine) as session:
        assert stock.active_reservations(session, "O1") == []


def test_release_and_fulfil_are_idempotent(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 5})
    with transaction(ledger_engine) as session:
        stock.reserve(session, [request("O1", "N1", 2), request("O2", "N1", 1)])

    for _ in range(2):
        with transaction(ledger_engine) as session:
            stock.release(session, "O1")
            stock.fulfil(session, "O2", "O2-S1")

    assert position(ledger_engine, "N1") == (4, 0, 0)
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []


def test_adjustment_never_takes_on_hand_below_reserved(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 5})
    with transaction(ledger_engine) as session:
        stock.reserve(session, [request("O1", "N1", 4)])

    with pytest.raises(NegativeStock), transaction(ledger_engine) as session:
        stock.adjust_on_hand(session, "N1", "TEE", -2)

    assert position(ledger_engine, "N1") == (5, 4, 0)


def test_concurrent_orders_never_oversell(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 20, "N2": 20, "N3": 10})

    def attempt(i: int) -> bool:
        node = f"N{i % 3 + 1}"
        try:
            with transaction(ledger_engine) as session:
                stock.reserve(session, [request(f"O{i}", node, 1)])
            return True
        except InsufficientStock:
            return False

    with ThreadPoolExecutor(max_workers=16) as pool:
        won = sum(pool.map(attempt, range(150)))

    assert won == 50
    assert [position(ledger_engine, n)[1] for n in ("N1", "N2", "N3")] == [20, 20, 10]
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []
