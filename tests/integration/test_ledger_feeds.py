"""Feeds keep stock right when messages are replayed, late, or out of order."""

from datetime import UTC, datetime, timedelta

from ledger import stock
from ledger.audit import ledger_imbalances
from ledger.db import transaction
from ledger.feeds import DeltaLine, apply_deltas, apply_snapshot
from tests.support.ledger_fixtures import position, seed

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def delta(event_id: str, qty: int, minutes: int, node: str = "N1") -> DeltaLine:
    return DeltaLine(event_id, node, "TEE", qty, T0 + timedelta(minutes=minutes))


def test_a_replayed_delta_is_applied_once(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 10})

    with transaction(ledger_engine) as session:
        first = apply_deltas(session, "wms", [delta("e1", 5, 1)])
    with transaction(ledger_engine) as session:
        replay = apply_deltas(session, "wms", [delta("e1", 5, 1)])

    assert (first.applied, replay.applied, replay.replayed) == (1, 0, ["e1"])
    assert position(ledger_engine, "N1") == (15, 0, 0)


def test_out_of_order_deltas_end_at_the_same_stock(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 10, "N2": 10})

    with transaction(ledger_engine) as session:
        apply_deltas(session, "wms", [delta("a", 5, 1), delta("b", -3, 2), delta("c", 4, 3)])
        apply_deltas(
            session,
            "wms",
            [delta("c2", 4, 3, "N2"), delta("a2", 5, 1, "N2"), delta("b2", -3, 2, "N2")],
        )

    assert position(ledger_engine, "N1") == position(ledger_engine, "N2") == (16, 0, 0)


def test_a_stale_snapshot_does_not_overwrite_newer_stock(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 10})
    with transaction(ledger_engine) as session:
        apply_snapshot(session, "wms", "s2", "N1", T0 + timedelta(hours=2), {"TEE": 40})

    with transaction(ledger_engine) as session:
        late = apply_snapshot(session, "wms", "s1", "N1", T0 + timedelta(hours=1), {"TEE": 7})

    assert late.stale_skus == 1
    assert position(ledger_engine, "N1") == (40, 0, 0)


def test_a_delta_older_than_the_last_snapshot_is_already_counted(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 10})
    with transaction(ledger_engine) as session:
        apply_snapshot(session, "wms", "s1", "N1", T0 + timedelta(minutes=30), {"TEE": 20})

    with transaction(ledger_engine) as session:
        outcome = apply_deltas(session, "wms", [delta("old", 5, 10), delta("new", 2, 45)])

    assert outcome.stale == ["old"] and outcome.applied == 1
    assert position(ledger_engine, "N1") == (22, 0, 0)


def test_a_snapshot_keeps_reservations_and_shipments_made_after_its_as_of_time(
    ledger_engine,
) -> None:
    seed(ledger_engine, {"N1": 10})
    snapshot_taken = datetime.now(UTC) - timedelta(minutes=5)
    with transaction(ledger_engine) as session:  # after the WMS took its snapshot:
        stock.reserve(session, [stock.ReservationRequest("O1", "O1-S1", 1, "N1", "TEE", 3)])
        stock.reserve(session, [stock.ReservationRequest("O2", "O2-S1", 1, "N1", "TEE", 2)])
        stock.fulfil(session, "O2", "O2-S1")  # 2 units left the building

    with transaction(ledger_engine) as session:
        apply_snapshot(session, "wms", "s1", "N1", snapshot_taken, {"TEE": 10})

    assert position(ledger_engine, "N1") == (8, 3, 0)
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []


def test_a_full_snapshot_zeroes_skus_it_omits_and_opens_new_ones(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 10}, skus=("TEE", "MUG", "CAP"))

    with transaction(ledger_engine) as session:
        outcome = apply_snapshot(session, "wms", "s1", "N1", T0, {"TEE": 4, "MUG": 10})

    assert (outcome.changed, outcome.unchanged) == (2, 1)
    assert position(ledger_engine, "N1", "CAP") == (0, 0, 0)
    assert position(ledger_engine, "N1", "TEE") == (4, 0, 0)
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []


def test_a_delta_that_would_take_stock_below_zero_is_refused(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 2})

    with transaction(ledger_engine) as session:
        outcome = apply_deltas(session, "wms", [delta("e1", -5, 1)])

    assert outcome.refused == ["e1"]
    assert position(ledger_engine, "N1") == (2, 0, 0)
