"""A pulled page of stock deltas on real SQLite and PostgreSQL (audit H6): its good lines are
applied, its bad ones refused by name and logged, and the cursor moves past the page, so one
bad line never freezes the source."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from ledger.db import transaction
from ledger.tables import FeedSource
from services import feeds
from services.feeds import DeltaLine, RefusedDelta
from tests.support.ledger_fixtures import position, seed

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _delta(event_id: str, qty: int, node: str = "N1", sku: str = "TEE") -> DeltaLine:
    return DeltaLine(event_id, node, sku, qty, T0 + timedelta(minutes=1))


def _source(engine: Engine) -> None:
    with transaction(engine) as session:
        session.add(FeedSource(source="erp", url="http://erp"))


def _cursor(engine: Engine) -> str | None:
    with Session(engine) as session:
        row = session.get(FeedSource, "erp")
        assert row is not None
        return row.cursor


def test_a_pulled_page_applies_its_good_lines_and_refuses_the_others_by_name(
    ledger_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    seed(ledger_engine, {"N1": 10})
    _source(ledger_engine)
    page = [
        _delta("e1", 2),
        _delta("e2", 7, sku="NEW-SKU"),
        _delta("e3", 9, node="NOWHERE"),
        _delta("e4", -50),
        _delta("e5", 3),
    ]

    with caplog.at_level(logging.WARNING, logger="opendom.feeds"):
        outcome = feeds.apply_pulled_page(ledger_engine, "erp", None, "c1", page)
    again = feeds.apply_pulled_page(ledger_engine, "erp", "c1", None, [])

    assert (outcome.applied, outcome.already_applied) == (2, False)
    assert sorted(outcome.refused, key=lambda r: r.event_id) == [
        RefusedDelta("e2", "N1", "NEW-SKU", "unknown SKU NEW-SKU"),
        RefusedDelta("e3", "NOWHERE", "TEE", "unknown node NOWHERE"),
        RefusedDelta("e4", "N1", "TEE", "would take on hand of TEE at N1 below 0"),
    ]
    assert position(ledger_engine, "N1") == (15, 0, 0)
    assert _cursor(ledger_engine) == "c1"  # past the page: the next pull asks for what follows
    assert (again.applied, again.already_applied, _cursor(ledger_engine)) == (0, False, "c1")
    logged = [r.getMessage() for r in caplog.records]
    assert any("erp" in m and "'e2'" in m and "'NEW-SKU'" in m for m in logged)
    assert any("'e3'" in m and "'NOWHERE'" in m and "unknown node" in m for m in logged)


def test_a_line_the_database_refuses_is_named_and_the_rest_of_the_page_applied(
    ledger_engine: Engine,
) -> None:
    if ledger_engine.dialect.name == "sqlite":
        pytest.skip("SQLite stores an event id of any length")
    seed(ledger_engine, {"N1": 10})
    _source(ledger_engine)
    too_long = "x" * 201  # FeedEvent.event_id is 200 characters

    outcome = feeds.apply_pulled_page(
        ledger_engine, "erp", None, "c1", [_delta("e1", 2), _delta(too_long, 5), _delta("e2", 1)]
    )

    assert outcome.applied == 2
    assert [
        (r.event_id, r.reason.startswith("refused by the database")) for r in outcome.refused
    ] == [(too_long, True)]
    assert position(ledger_engine, "N1") == (13, 0, 0)
    assert _cursor(ledger_engine) == "c1"
