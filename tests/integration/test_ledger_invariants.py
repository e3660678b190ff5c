"""Feeds and shipments keep the ledger's invariants on real SQLite and PostgreSQL: on hand never
goes negative, a refused delta can be sent again corrected, a snapshot below what is promised
keeps the promises and reports the shortfall, and a parcel is never subtracted twice."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from ledger import stock
from ledger.audit import ledger_imbalances
from ledger.db import transaction
from ledger.errors import NegativeStock
from ledger.feeds import DeltaLine, apply_deltas, apply_snapshot
from ledger.positions import Oversold, oversold_positions
from ledger.tables import FeedSource
from services import feeds
from services.feeds import FeedMode, RefusedDelta
from tests.support.ledger_fixtures import position, seed


def _reserve(engine: Engine, order_id: str, quantity: int, node: str = "N1") -> None:
    with transaction(engine) as session:
        request = stock.ReservationRequest(order_id, f"{order_id}-S1", 1, node, "TEE", quantity)
        stock.reserve(session, [request])


def _balances(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        return ledger_imbalances(session)


def test_a_delta_cannot_take_on_hand_below_what_is_reserved(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 5})
    _reserve(ledger_engine, "O1", 5)

    with transaction(ledger_engine) as session:
        outcome = apply_deltas(session, "erp", [DeltaLine("d1", "N1", "TEE", -3, _now())])
    with transaction(ledger_engine) as session:
        stock.fulfil(session, "O1", "O1-S1")

    assert outcome.refused == ["d1"]
    assert position(ledger_engine, "N1") == (0, 0, 0)
    assert _balances(ledger_engine) == []


def test_a_pushed_delta_below_reserved_units_is_refused_naming_them(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 5})
    _reserve(ledger_engine, "O1", 4)

    outcome = feeds.push_deltas(
        ledger_engine, "erp", [DeltaLine("d1", "N1", "TEE", -3, _now())], FeedMode.PARTIAL
    )

    assert [r.reason for r in outcome.refused] == [
        "would take on hand of TEE at N1 below its 4 reserved or held units"
    ]
    assert position(ledger_engine, "N1") == (5, 4, 0)


def test_a_delta_refused_in_partial_mode_applies_when_resent_corrected(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 1})
    wrong = [DeltaLine("d1", "N1", "TEE", -3, _now())]
    corrected = [DeltaLine("d1", "N1", "TEE", -1, _now())]

    refused = feeds.push_deltas(ledger_engine, "erp", wrong, FeedMode.PARTIAL)
    resent = feeds.push_deltas(ledger_engine, "erp", corrected, FeedMode.PARTIAL)

    assert (refused.applied, len(refused.refused)) == (0, 1)
    assert (resent.applied, resent.replayed) == (1, 0)
    assert position(ledger_engine, "N1") == (0, 0, 0)


def test_a_pulled_delta_below_reserved_units_is_refused_by_name_and_can_come_again(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 5})
    _reserve(ledger_engine, "O1", 4)
    with transaction(ledger_engine) as session:
        session.add(FeedSource(source="erp", url="http://erp"))

    first = feeds.apply_pulled_page(
        ledger_engine, "erp", None, "c1", [DeltaLine("d1", "N1", "TEE", -3, _now())]
    )
    corrected = feeds.apply_pulled_page(
        ledger_engine, "erp", "c1", "c2", [DeltaLine("d1", "N1", "TEE", -1, _now())]
    )

    assert first.refused == [
        RefusedDelta("d1", "N1", "TEE", "would take on hand of TEE at N1 below its 4 reserved "
                     "or held units")
    ]  # fmt: skip
    assert (corrected.applied, corrected.refused) == (1, [])
    assert position(ledger_engine, "N1") == (4, 4, 0)
    assert _balances(ledger_engine) == []


def test_a_receipt_adjustment_applies_to_an_oversold_position(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 5})
    _reserve(ledger_engine, "O1", 5)
    with transaction(ledger_engine) as session:
        apply_snapshot(session, "wms", "s1", "N1", _now(), {"TEE": 2})

    with transaction(ledger_engine) as session:
        stock.adjust_on_hand(session, "N1", "TEE", 1, "goods receipt")
        with pytest.raises(NegativeStock):
            stock.adjust_on_hand(session, "N1", "TEE", -1, "damaged")

    assert position(ledger_engine, "N1") == (3, 5, 0)


def test_a_positive_delta_applies_to_an_oversold_position(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 5})
    _reserve(ledger_engine, "O1", 5)
    with transaction(ledger_engine) as session:
        apply_snapshot(session, "wms", "s1", "N1", _now(), {"TEE": 2})

    with transaction(ledger_engine) as session:
        outcome = apply_deltas(session, "erp", [DeltaLine("d1", "N1", "TEE", 1, _now())])

    assert outcome.applied == 1
    assert position(ledger_engine, "N1") == (3, 5, 0)


def test_a_snapshot_below_reservations_keeps_them_and_reports_the_position_oversold(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 10, "N2": 10})
    _reserve(ledger_engine, "O1", 6)

    with transaction(ledger_engine) as session:
        apply_snapshot(session, "wms", "s1", "N1", _now(), {"TEE": 4})
    with transaction(ledger_engine) as session:
        oversold = oversold_positions(session)
        sourcing_sees = {c.node_id: c.available for c in stock.candidate_nodes(session, ["TEE"])}

    assert position(ledger_engine, "N1") == (4, 6, 0)
    assert oversold == [Oversold("N1", "TEE", on_hand=4, reserved=6, held=0)]
    assert sourcing_sees == {"N1": {}, "N2": {"TEE": 10}}  # nothing more is promised from N1
    assert _balances(ledger_engine) == []

    # The node ships the order after all: on hand stops at zero, never below.
    with transaction(ledger_engine) as session:
        stock.fulfil(session, "O1", "O1-S1")
        assert oversold_positions(session) == []
    assert position(ledger_engine, "N1") == (0, 0, 0)
    assert _balances(ledger_engine) == []


def test_a_parcel_shipped_before_a_snapshot_processed_after_it_is_subtracted_once(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 10})
    counted_at = _now() - timedelta(minutes=5)
    _reserve(ledger_engine, "O1", 2)

    # The parcel left a minute before the WMS counted; its callback is processed now.
    with transaction(ledger_engine) as session:
        stock.fulfil(session, "O1", "O1-S1", shipped_at=counted_at - timedelta(minutes=1))
    with transaction(ledger_engine) as session:
        apply_snapshot(session, "wms", "s1", "N1", counted_at, {"TEE": 8})

    assert position(ledger_engine, "N1") == (8, 0, 0)
    assert _balances(ledger_engine) == []


def test_a_parcel_shipped_before_an_applied_snapshot_does_not_leave_on_hand_again(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 10})
    counted_at = _now() - timedelta(minutes=5)
    _reserve(ledger_engine, "O1", 2)
    _reserve(ledger_engine, "O2", 3)
    with transaction(ledger_engine) as session:  # the WMS no longer counts O1's parcel
        apply_snapshot(session, "wms", "s1", "N1", counted_at, {"TEE": 8})

    with transaction(ledger_engine) as session:
        stock.fulfil(session, "O1", "O1-S1", shipped_at=counted_at - timedelta(seconds=5))
        stock.fulfil(session, "O2", "O2-S1", shipped_at=counted_at + timedelta(seconds=5))

    assert position(ledger_engine, "N1") == (5, 0, 0)  # only O2's parcel left after the count
    assert _balances(ledger_engine) == []


def _now() -> datetime:
    return datetime.now(UTC)


def test_reconcile_names_an_incoming_counter_its_movements_do_not_rebuild(
    ledger_engine: Engine,
) -> None:
    # Local imports: the module's import block is shared with other helpers' appended tests.
    from types import SimpleNamespace

    from sqlalchemy import text

    from services import incoming

    seed(ledger_engine, {"N1": 0})
    line = SimpleNamespace(
        event_id="e1", action="upsert", kind="purchase_order", reference="PO-1", line=1,
        node_id="N1", sku="TEE", quantity=40, expected_date=_now().date(), from_node_id=None,
    )  # fmt: skip
    incoming.push_incoming(ledger_engine, "erp", [line])
    assert _balances(ledger_engine) == []

    with transaction(ledger_engine) as session:  # a write that bypassed the ledger
        session.execute(text("update stockposition set incoming = incoming + 1"))

    assert _balances(ledger_engine) == [
        "N1|TEE: incoming 41 but open incoming lines differ",
        "N1|TEE: incoming is 41 but the ledger entries rebuild 40",
    ]


def test_receipts_never_take_incoming_below_zero(ledger_engine: Engine) -> None:
    from types import SimpleNamespace

    from services import incoming
    from services.feeds import FeedRefused

    seed(ledger_engine, {"N1": 0})
    line = SimpleNamespace(
        event_id="e1", action="upsert", kind="purchase_order", reference="PO-1", line=1,
        node_id="N1", sku="TEE", quantity=10, expected_date=_now().date(), from_node_id=None,
    )  # fmt: skip
    incoming.push_incoming(ledger_engine, "erp", [line])

    def receipt(event_id: str, quantity: int) -> SimpleNamespace:
        return SimpleNamespace(
            event_id=event_id, kind="purchase_order", reference="PO-1", line=1,
            quantity=quantity, received_at=_now(),
        )  # fmt: skip

    incoming.push_receipts(ledger_engine, "wms", [receipt("r1", 10)])
    with pytest.raises(FeedRefused, match="purchase_order PO-1 line 1 is received"):
        incoming.push_receipts(ledger_engine, "wms", [receipt("r2", 1)])

    assert position(ledger_engine, "N1") == (10, 0, 0)
    assert _balances(ledger_engine) == []
