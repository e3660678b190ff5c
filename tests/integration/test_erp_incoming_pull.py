"""Purchase order and transfer lines pulled with an ERP's page of deltas, on real SQLite and
PostgreSQL: the page (deltas, incoming lines, cursor) applies whole in one transaction, a bad
incoming line is refused by name and logged while the rest of the page applies, and a page
pulled again changes nothing."""

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from contracts.activities import PulledDeltaPage, PulledIncomingLine
from ledger.audit import ledger_imbalances
from ledger.db import transaction
from ledger.tables import FeedSource, IncomingLine, StockMovement, StockPosition
from services import feeds
from services.feeds import DeltaLine, RefusedIncoming
from tests.support.ledger_fixtures import seed

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
DUE = "2026-12-14"


def _delta(event_id: str, qty: int, node: str = "N1") -> DeltaLine:
    return DeltaLine(event_id, node, "TEE", qty, T0 + timedelta(minutes=1))


def _po(event_id: str, reference: str = "PO-1", **fields: object) -> PulledIncomingLine:
    """A line as the ERP's page carries it (contracts.activities, what the activity receives)."""
    line: dict[str, object] = {
        "event_id": event_id, "kind": "purchase_order", "reference": reference, "line": 1,
        "node_id": "N1", "sku": "TEE", "quantity": 40, "expected_date": DUE,
    }  # fmt: skip
    return PulledIncomingLine.model_validate(line | fields)


def _source(engine: Engine) -> None:
    with transaction(engine) as session:
        session.add(FeedSource(source="erp", url="http://erp"))


def _cursor(engine: Engine) -> str | None:
    with Session(engine) as session:
        row = session.get(FeedSource, "erp")
        assert row is not None
        return row.cursor


def _counters(engine: Engine, node: str = "N1") -> tuple[int, int]:
    """(on hand, incoming)"""
    with Session(engine) as session:
        p = session.exec(
            select(StockPosition).where(StockPosition.node_id == node, StockPosition.sku == "TEE")
        ).one()
        return p.on_hand, p.incoming


def _lines(engine: Engine) -> list[tuple[str, str, int, int, date, str]]:
    with Session(engine) as session:
        return [
            (ln.kind, ln.reference, ln.quantity, ln.received, ln.expected_date, ln.status)
            for ln in session.exec(select(IncomingLine).order_by(IncomingLine.reference))
        ]


def _movements(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(StockMovement)).one()


def _imbalances(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        return ledger_imbalances(session)


def test_a_pulled_page_applies_its_deltas_incoming_lines_and_cursor_together(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 10, "N2": 0})
    _source(ledger_engine)
    transfer = _po("t1", "TR-9", kind="transfer", from_node_id="N2", quantity=5)

    outcome = feeds.apply_pulled_page(
        ledger_engine, "erp", None, "c1", [_delta("e1", 2)], [_po("p1"), transfer]
    )

    assert (outcome.applied, outcome.incoming_applied, outcome.already_applied) == (1, 2, False)
    assert (outcome.refused, outcome.refused_incoming) == ([], [])
    assert _counters(ledger_engine) == (12, 45)  # incoming is never on hand
    assert _lines(ledger_engine) == [
        ("purchase_order", "PO-1", 40, 0, date(2026, 12, 14), "open"),
        ("transfer", "TR-9", 5, 0, date(2026, 12, 14), "open"),
    ]
    assert _cursor(ledger_engine) == "c1"
    assert _imbalances(ledger_engine) == []


def test_a_page_recorded_before_incoming_lines_decodes_with_none() -> None:
    recorded = {"deltas": [], "next_cursor": "7"}  # a history's payload from before the field

    assert PulledDeltaPage.model_validate(recorded).incoming == []


def test_a_bad_incoming_line_is_refused_by_name_and_the_rest_of_the_page_applied(
    ledger_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    seed(ledger_engine, {"N1": 10, "N2": 0})
    _source(ledger_engine)
    feeds.apply_pulled_page(ledger_engine, "erp", None, "c1", [], [_po("p1")])
    page = [
        _po("p2", "PO-2", quantity=7),
        _po("p3", "PO-3", sku="NEW-SKU"),
        _po("p4", "PO-4", kind="gift"),
        _po("p5", "PO-5", expected_date="14/12/2026"),
        _po("p6", "PO-6", quantity=0),
        _po("p7", "P" * 121),
        _po("p8", "PO-1", node_id="N2"),  # the stored line arrives at N1: only the ledger knows
        _po("p9", "PO-9", action="cancel"),
        _po("p10", "PO-10", kind="transfer"),
    ]

    with caplog.at_level(logging.WARNING, logger="opendom.feeds"):
        outcome = feeds.apply_pulled_page(ledger_engine, "erp", "c1", "c2", [_delta("e1", 3)], page)

    assert (outcome.applied, outcome.incoming_applied) == (1, 1)
    assert sorted(outcome.refused_incoming, key=lambda r: int(r.event_id[1:])) == [
        RefusedIncoming("p3", "purchase_order PO-3 line 1", "unknown SKU NEW-SKU"),
        RefusedIncoming(
            "p4", "gift PO-4 line 1", "kind 'gift' is not one of purchase_order, transfer"
        ),
        RefusedIncoming(
            "p5",
            "purchase_order PO-5 line 1",
            "expected_date '14/12/2026' is not a date (YYYY-MM-DD)",
        ),
        RefusedIncoming(
            "p6", "purchase_order PO-6 line 1", "quantity 0 is not between 1 and 1000000"
        ),
        RefusedIncoming(
            "p7", f"purchase_order {'P' * 121} line 1", "reference is longer than 120 characters"
        ),
        RefusedIncoming(
            "p8",
            "purchase_order PO-1 line 1",
            "purchase_order PO-1 line 1 arrives at N1 with TEE; cancel it and send a new line"
            " to change its node or SKU",
        ),
        RefusedIncoming(
            "p9", "purchase_order PO-9 line 1", "no purchase_order PO-9 line 1 to cancel"
        ),
        RefusedIncoming(
            "p10",
            "transfer PO-10 line 1",
            "transfer PO-10 line 1: a transfer names the node it comes from (from_node_id)",
        ),
    ]
    assert _counters(ledger_engine) == (13, 47)
    assert _counters(ledger_engine, "N2") == (0, 0)
    assert _cursor(ledger_engine) == "c2"  # past the page: later lines are not held behind it
    logged = [r.getMessage() for r in caplog.records]
    assert any("'p3'" in m and "PO-3" in m and "unknown SKU NEW-SKU" in m for m in logged)
    assert any("'p8'" in m and "arrives at N1" in m for m in logged)
    assert _imbalances(ledger_engine) == []


def test_a_page_pulled_again_changes_nothing(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 10})
    _source(ledger_engine)
    deltas, lines = [_delta("e1", 2)], [_po("p1"), _po("p2", "PO-2", quantity=3)]
    first = feeds.apply_pulled_page(ledger_engine, "erp", None, "c1", deltas, lines)
    movements = _movements(ledger_engine)

    retried = feeds.apply_pulled_page(ledger_engine, "erp", None, "c1", deltas, lines)
    # An ERP that serves the same changes again after its cursor moved on (its own replay).
    served_again = feeds.apply_pulled_page(ledger_engine, "erp", "c1", "c2", deltas, lines)

    assert (first.applied, first.incoming_applied) == (1, 2)
    assert (retried.already_applied, retried.incoming_applied) == (True, 0)
    assert (served_again.already_applied, served_again.applied) == (False, 0)
    assert (served_again.incoming_applied, served_again.refused_incoming) == (0, [])
    assert _counters(ledger_engine) == (12, 43)
    assert _movements(ledger_engine) == movements
    assert _cursor(ledger_engine) == "c2"
    assert _imbalances(ledger_engine) == []


def test_a_changed_and_a_cancelled_pulled_line_move_incoming_by_the_difference(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 0})
    _source(ledger_engine)
    feeds.apply_pulled_page(ledger_engine, "erp", None, "c1", [], [_po("p1"), _po("q1", "PO-2")])

    outcome = feeds.apply_pulled_page(
        ledger_engine,
        "erp",
        "c1",
        "c2",
        [],
        [
            _po("p1-v2", quantity=25, expected_date="2026-12-20"),
            _po("q1-x", "PO-2", action="cancel", node_id=None, sku=None, quantity=None),
        ],
    )

    assert (outcome.incoming_applied, outcome.refused_incoming) == (2, [])
    assert _counters(ledger_engine) == (0, 25)
    assert _lines(ledger_engine) == [
        ("purchase_order", "PO-1", 25, 0, date(2026, 12, 20), "open"),
        ("purchase_order", "PO-2", 40, 0, date(2026, 12, 14), "cancelled"),
    ]
    assert _imbalances(ledger_engine) == []


def test_a_delta_the_database_refuses_still_lets_the_pages_incoming_lines_apply(
    ledger_engine: Engine,
) -> None:
    if ledger_engine.dialect.name == "sqlite":
        pytest.skip("SQLite stores an event id of any length")
    seed(ledger_engine, {"N1": 10})
    _source(ledger_engine)
    too_long = "x" * 201  # FeedEvent.event_id is 200 characters: only PostgreSQL refuses it

    outcome = feeds.apply_pulled_page(
        ledger_engine, "erp", None, "c1", [_delta("e1", 2), _delta(too_long, 5)], [_po("p1")]
    )

    assert (outcome.applied, outcome.incoming_applied) == (1, 1)
    assert [r.event_id for r in outcome.refused] == [too_long]
    assert _counters(ledger_engine) == (12, 40)
    assert _cursor(ledger_engine) == "c1"
    assert _imbalances(ledger_engine) == []
