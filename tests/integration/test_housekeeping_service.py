"""Housekeeping's units of work: due holds expire in batches until one comes back short,
threshold events are published once, and only enabled feed sources are pulled from."""

from datetime import UTC, datetime, timedelta

from ledger import holds
from ledger.db import transaction
from ledger.tables import FeedSource
from services import housekeeping
from services.housekeeping import EnabledFeedSource
from tests.support.ledger_fixtures import position, seed


def place(engine, hold_id: str, expires_at: datetime) -> None:
    with transaction(engine) as session:
        holds.place_hold(session, hold_id, "web", [holds.HoldRequestLine(1, "N1", "TEE", 1)],
                         expires_at)  # fmt: skip


def test_due_holds_expire_in_batches_until_none_are_left(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 9})
    for i in range(5):
        place(ledger_engine, f"old-{i}", datetime.now(UTC) - timedelta(seconds=1))
    place(ledger_engine, "fresh", datetime.now(UTC) + timedelta(hours=1))

    assert housekeeping.expire_due_holds(ledger_engine, batch=2) == 5
    assert housekeeping.expire_due_holds(ledger_engine, batch=2) == 0
    assert position(ledger_engine, "N1") == (9, 0, 1)


def test_threshold_events_are_published_once(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 1})
    place(
        ledger_engine, "H1", datetime.now(UTC) + timedelta(hours=1)
    )  # the last unit: out of stock

    assert housekeeping.publish_availability_events(ledger_engine, 50_000) >= 1
    assert housekeeping.publish_availability_events(ledger_engine, 50_000) == 0


def test_only_enabled_feed_sources_are_listed(ledger_engine) -> None:
    with transaction(ledger_engine) as session:
        session.add(FeedSource(source="erp", url="http://erp", cursor="c1"))
        session.add(FeedSource(source="old-wms", url="http://wms", enabled=False))

    assert housekeeping.enabled_feed_sources(ledger_engine) == [
        EnabledFeedSource("erp", "http://erp", "c1")
    ]
