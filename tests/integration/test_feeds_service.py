"""services.feeds on real SQLite and PostgreSQL: which lines a pushed feed refuses, all or
nothing or partial, a pulled page applied once, and a channel's pool replaced whole."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from domain.availability import ChannelPoolRule
from domain.errors import UnknownReference
from ledger.db import transaction
from ledger.tables import ChannelPool, FeedSource
from services import feeds
from services.feeds import DeltaLine, FeedMode, FeedRefused, FeedTimeAhead, RefusedLine
from tests.support.ledger_fixtures import position, seed

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _delta(event_id: str, qty: int, node: str = "N1", sku: str = "TEE") -> DeltaLine:
    return DeltaLine(event_id, node, sku, qty, T0 + timedelta(minutes=1))


class _Position:  # anything with the fields of a snapshot line, as the API's model has them
    def __init__(self, sku: str, on_hand: int) -> None:
        self.sku = sku
        self.on_hand = on_hand


def test_a_snapshot_with_unknown_or_repeated_skus_applies_nothing_and_names_them(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 10}, skus=("TEE", "CAP"))
    lines = [_Position("TEE", 4), _Position("HAT", 1), _Position("TEE", 5)]

    with pytest.raises(FeedRefused) as refused:
        feeds.push_snapshot(ledger_engine, "wms", "s1", "N1", T0, lines)

    assert refused.value.refused == [
        RefusedLine(1, "unknown SKU HAT"),
        RefusedLine(2, "SKU TEE appears twice"),
    ]
    assert str(refused.value) == (
        "nothing applied: positions[1]: unknown SKU HAT; positions[2]: SKU TEE appears twice"
    )
    assert position(ledger_engine, "N1", "TEE") == (10, 0, 0)


def test_a_partial_snapshot_applies_the_good_lines_and_reports_the_refused(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 10}, skus=("TEE", "CAP"))
    lines = [_Position("TEE", 4), _Position("HAT", 1)]

    outcome = feeds.push_snapshot(ledger_engine, "wms", "s1", "N1", T0, lines, FeedMode.PARTIAL)

    assert outcome.refused == [RefusedLine(1, "unknown SKU HAT")]
    assert outcome.applied == 2  # TEE set to 4, CAP omitted so set to 0
    assert position(ledger_engine, "N1", "TEE") == (4, 0, 0)
    assert position(ledger_engine, "N1", "CAP") == (0, 0, 0)


def test_a_snapshot_of_an_unknown_node_is_refused(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 10})

    with pytest.raises(UnknownReference, match="node_id: unknown N9"):
        feeds.push_snapshot(ledger_engine, "wms", "s1", "N9", T0, [_Position("TEE", 1)])


def test_a_snapshot_or_delta_dated_ahead_of_this_clock_is_refused_and_moves_nothing(
    ledger_engine: Engine,
) -> None:
    """A local time sent as UTC: a snapshot dated hours ahead would make every delta and
    receipt until then look older than the count, and be ignored."""
    seed(ledger_engine, {"N1": 10})
    ahead = datetime.now(UTC) + timedelta(hours=3)

    with pytest.raises(FeedTimeAhead, match=r"as_of: .* is ahead of this clock"):
        feeds.push_snapshot(ledger_engine, "wms", "s1", "N1", ahead, [_Position("TEE", 1)])
    with pytest.raises(FeedRefused, match=r"deltas\[0\]: as_of .* is ahead"):
        feeds.push_deltas(ledger_engine, "wms", [DeltaLine("e1", "N1", "TEE", 5, ahead)])

    assert position(ledger_engine, "N1") == (10, 0, 0)


def test_deltas_naming_unknown_nodes_or_skus_apply_nothing(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 10})
    batch = [_delta("e1", 2), _delta("e2", 1, node="N9"), _delta("e3", 1, sku="HAT")]

    with pytest.raises(FeedRefused, match=r"deltas\[1\]: unknown node N9; deltas\[2\]"):
        feeds.push_deltas(ledger_engine, "wms", batch)

    assert position(ledger_engine, "N1") == (10, 0, 0)


def test_a_delta_that_would_go_below_zero_rolls_the_whole_batch_back(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 10, "N2": 1})
    batch = [_delta("e1", 5), _delta("e2", -3, node="N2")]

    with pytest.raises(FeedRefused) as refused:
        feeds.push_deltas(ledger_engine, "wms", batch)

    assert refused.value.refused == [RefusedLine(1, "would take on hand of TEE at N2 below 0")]
    assert position(ledger_engine, "N1") == (10, 0, 0)
    # Nothing was recorded, not even the event ids: the corrected batch applies in full.
    again = feeds.push_deltas(ledger_engine, "wms", [_delta("e1", 5), _delta("e2", -1, "N2")])
    assert (again.applied, again.replayed) == (2, 0)


def test_partial_deltas_apply_the_good_lines_and_report_the_refused_in_line_order(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 10, "N2": 1})
    batch = [_delta("e1", -3, node="N2"), _delta("e2", 1, node="N9"), _delta("e3", 5)]

    outcome = feeds.push_deltas(ledger_engine, "wms", batch, FeedMode.PARTIAL)

    assert outcome.applied == 1
    assert [r.line for r in outcome.refused] == [0, 1]
    assert position(ledger_engine, "N1") == (15, 0, 0)
    assert position(ledger_engine, "N2") == (1, 0, 0)


def test_a_refusal_names_fifty_lines_and_counts_the_rest(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 10})
    batch = [_delta(f"e{i}", 1, node="N9") for i in range(60)]

    with pytest.raises(FeedRefused) as refused:
        feeds.push_deltas(ledger_engine, "wms", batch)

    assert len(refused.value.refused) == 60
    assert str(refused.value).count("unknown node N9") == 50
    assert str(refused.value).endswith(" (and 10 more)")


def test_a_pulled_page_and_its_cursor_commit_once(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 10})
    with transaction(ledger_engine) as session:
        session.add(FeedSource(source="erp", url="http://erp"))

    first = feeds.apply_pulled_page(ledger_engine, "erp", None, "c1", [_delta("e1", 2)])
    retried = feeds.apply_pulled_page(ledger_engine, "erp", None, "c1", [_delta("e1", 2)])

    assert (first.applied, first.already_applied) == (1, False)
    assert (retried.applied, retried.already_applied) == (0, True)
    assert position(ledger_engine, "N1") == (12, 0, 0)
    with Session(ledger_engine) as session:
        source = session.get(FeedSource, "erp")
        assert source is not None and source.cursor == "c1"


def test_a_channels_pool_is_replaced_as_a_whole(ledger_engine: Engine) -> None:
    feeds.set_channel_pool(
        ledger_engine,
        ChannelPoolRule(channel="market", node_ids=["N1"], share_by_node_type={"store": 0.5}),
    )
    feeds.set_channel_pool(
        ledger_engine, ChannelPoolRule(channel="market", cap_by_node_type={"store": 3})
    )

    with Session(ledger_engine) as session:
        row = session.get(ChannelPool, "market")
        assert row is not None
        assert (row.node_ids, row.share_by_node_type, row.cap_by_node_type) == (
            None,
            {},
            {"store": 3},
        )
