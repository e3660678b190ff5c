"""The backorder sweep and divided lines, on real SQLite and PostgreSQL: an order waiting for a
line no single node holds is retried once the network holds it, and a ship-partial order once
any of its units can go."""

from sqlalchemy import Engine

from domain.orders import FulfilmentPolicy
from tests.integration.test_backorder_sweep import _backordered, _network, _picked, _receive


def test_an_order_whose_line_no_single_node_holds_is_retried_once_the_network_holds_it(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}, "W2": {}})
    b2b = _backordered(ledger_engine, "b2b", [("TEE", 678)])
    _receive(ledger_engine, "W1", "TEE", 400)
    assert _picked(ledger_engine) == []  # 400 of 678: a whole order waits

    _receive(ledger_engine, "W2", "TEE", 300)

    assert _picked(ledger_engine) == [b2b]


def test_a_ship_partial_order_is_retried_when_part_of_its_missing_line_arrives(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}, "W2": {}})
    partial = _backordered(
        ledger_engine, "partial", [("TEE", 78)], fulfilment_policy=FulfilmentPolicy.SHIP_PARTIAL
    )
    _backordered(ledger_engine, "whole", [("TEE", 78)])

    _receive(ledger_engine, "W1", "TEE", 50)
    _receive(ledger_engine, "W2", "TEE", 20)

    assert _picked(ledger_engine) == [partial]  # `whole` waits for the other 8
