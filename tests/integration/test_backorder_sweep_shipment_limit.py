"""The backorder sweep and the shipment limit, on real SQLite and PostgreSQL: an order its
allocation may not divide between nodes (a ruleset's max_splits or keep_lines_together) is
not retried for stock it could only take from several, and sets none of it aside ahead of a
lower-priority order that can take it."""

from datetime import timedelta

from sqlalchemy import Engine

from domain.orders import FulfilmentPolicy
from services.backorders import orders_to_retry
from sourcing.model import Rule, Ruleset
from tests.integration.test_backorder_sweep import DAY, _backordered, _network, _receive

ONE_NODE = Ruleset(name="one node", rules=[Rule(name="together", keep_lines_together=True)])
TWO_NODES = Ruleset(name="two nodes", rules=[Rule(name="two", max_splits=2)])


def _picked(engine: Engine, ruleset: Ruleset | None) -> list[str]:
    return [r.order_id for r in orders_to_retry(engine, 50, DAY, ruleset=ruleset)]


def test_an_order_that_may_not_be_divided_is_not_retried_and_leaves_the_units_to_a_lower_priority_one(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}, "W2": {}})
    urgent = _backordered(ledger_engine, "urgent", [("TEE", 5), ("MUG", 5)], priority=9)
    modest = _backordered(ledger_engine, "modest", [("TEE", 5)], priority=1)
    _receive(ledger_engine, "W1", "TEE", 5)  # the tees at one node, the mugs at another
    _receive(ledger_engine, "W2", "MUG", 5)

    assert _picked(ledger_engine, None) == [urgent]  # divided: the urgent order takes the tees
    assert _picked(ledger_engine, ONE_NODE) == [modest]


def test_an_order_is_retried_once_one_node_holds_what_it_may_not_divide(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}, "W2": {}})
    whole = _backordered(ledger_engine, "whole", [("TEE", 5), ("MUG", 5)])
    _receive(ledger_engine, "W1", "TEE", 5)
    _receive(ledger_engine, "W2", "MUG", 5)
    assert _picked(ledger_engine, ONE_NODE) == []

    _receive(ledger_engine, "W1", "MUG", 5)

    assert _picked(ledger_engine, ONE_NODE) == [whole]


def test_a_line_no_node_holds_whole_is_divided_only_between_as_many_nodes_as_the_limit(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}, "W2": {}, "W3": {}})
    big = _backordered(ledger_engine, "big", [("TEE", 90)])
    for node_id in ("W1", "W2", "W3"):
        _receive(ledger_engine, node_id, "TEE", 30)
    assert _picked(ledger_engine, TWO_NODES) == []  # 60 from two nodes of the 90

    _receive(ledger_engine, "W1", "TEE", 30)

    assert _picked(ledger_engine, TWO_NODES) == [big]  # 60 at W1, 30 at W2


def test_a_ship_partial_order_under_the_limit_sets_aside_only_what_its_nodes_would_ship(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}, "W2": {}})
    partial = _backordered(
        ledger_engine,
        "partial",
        [("TEE", 5), ("MUG", 3)],
        priority=9,
        fulfilment_policy=FulfilmentPolicy.SHIP_PARTIAL,
        age=timedelta(hours=3),
    )
    mugs = _backordered(ledger_engine, "mugs", [("MUG", 5)], priority=1)
    _receive(ledger_engine, "W1", "TEE", 5)
    _receive(ledger_engine, "W2", "MUG", 5)

    # The partial order ships from one node, the one with the most: the tees, not the mugs.
    assert sorted(_picked(ledger_engine, ONE_NODE)) == sorted([partial, mugs])
