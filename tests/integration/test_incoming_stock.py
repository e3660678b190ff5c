"""Incoming stock on real SQLite and PostgreSQL: purchase order and transfer lines count as
incoming at their node (never as stock to sell now), a receipt turns them into on hand in one
transaction, every refused line is named and nothing is applied, replays change nothing, and the
counters always equal what the movements rebuild."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from domain.availability import available_to_promise
from domain.incoming import IncomingUnits, available_on
from ledger.audit import ledger_imbalances, reconcile
from ledger.db import transaction
from ledger.feeds import apply_snapshot
from ledger.tables import (
    ChannelPool,
    IncomingLine,
    MovementKind,
    Node,
    StockMovement,
    StockPosition,
)
from services import incoming
from services.feeds import FeedMode, FeedRefused
from tests.support.api_server import ApiServer, api_server
from tests.support.ledger_fixtures import seed

NOW = datetime.now(UTC)
DUE = date(2026, 12, 14)


def _line(event_id: str, reference: str = "PO-1", **fields: object) -> SimpleNamespace:
    """A pushed incoming line: what api.schemas.IncomingLinePush carries."""
    line = {
        "event_id": event_id, "action": "upsert", "kind": "purchase_order",
        "reference": reference, "line": 1, "node_id": "N1", "sku": "TEE", "quantity": 40,
        "expected_date": DUE, "from_node_id": None,
    }  # fmt: skip
    return SimpleNamespace(**(line | fields))


def _receipt(event_id: str, quantity: int, reference: str = "PO-1", **fields: object):  # type: ignore[no-untyped-def]
    receipt = {
        "event_id": event_id, "kind": "purchase_order", "reference": reference, "line": 1,
        "quantity": quantity, "received_at": NOW,
    }  # fmt: skip
    return SimpleNamespace(**(receipt | fields))


def _figures(engine: Engine, node: str = "N1") -> tuple[int, int, int]:
    """(on hand, incoming, ATP)"""
    with transaction(engine) as session:
        p = session.exec(
            select(StockPosition).where(StockPosition.node_id == node, StockPosition.sku == "TEE")
        ).one()
        return p.on_hand, p.incoming, available_to_promise(p)


def _line_state(engine: Engine, reference: str = "PO-1") -> tuple[int, int, str]:
    with transaction(engine) as session:
        line = session.exec(select(IncomingLine).where(IncomingLine.reference == reference)).one()
        return line.quantity, line.received, line.status


def _balanced(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        return ledger_imbalances(session)


def test_a_purchase_order_line_is_incoming_at_its_node_and_never_available_now(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 5})

    outcome = incoming.push_incoming(ledger_engine, "erp", [_line("e1")])

    assert outcome.applied == 1
    assert _figures(ledger_engine) == (5, 40, 5)
    assert _line_state(ledger_engine) == (40, 0, "open")
    assert _balanced(ledger_engine) == []


def test_a_partial_receipt_moves_units_from_incoming_to_on_hand_in_one_movement(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 5})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])

    outcome = incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 15)])

    assert outcome.applied == 1
    assert _figures(ledger_engine) == (20, 25, 20)
    assert _line_state(ledger_engine) == (40, 15, "open")
    with transaction(ledger_engine) as session:
        receipt = session.exec(
            select(StockMovement).where(StockMovement.kind == MovementKind.RECEIPT)
        ).one()
        assert (receipt.d_on_hand, receipt.d_incoming, receipt.cause) == (15, -15, "wms-n1:r1")
    assert _balanced(ledger_engine) == []


def test_receiving_the_rest_closes_the_line_as_received(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])

    incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 15), _receipt("r2", 25)])

    assert _figures(ledger_engine) == (40, 0, 40)
    assert _line_state(ledger_engine) == (40, 40, "received")
    assert _balanced(ledger_engine) == []


def test_an_over_receipt_is_refused_naming_the_line_and_the_batch_applies_nothing(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(
        ledger_engine, "erp", [_line("e1"), _line("e2", reference="PO-2", quantity=10)]
    )

    with pytest.raises(FeedRefused) as refused:
        incoming.push_receipts(
            ledger_engine,
            "wms-n1",
            [_receipt("r1", 40), _receipt("r2", 11, reference="PO-2")],
        )

    assert str(refused.value) == (
        "nothing applied: receipts[1]: would receive 11 of purchase_order PO-2 line 1,"
        " which has 10 open"
    )
    assert _figures(ledger_engine) == (0, 50, 0)
    assert _line_state(ledger_engine, "PO-1") == (40, 0, "open")
    # the refused event ids were not recorded: the corrected batch applies under the same ids
    again = incoming.push_receipts(
        ledger_engine, "wms-n1", [_receipt("r1", 40), _receipt("r2", 10, reference="PO-2")]
    )
    assert (again.applied, again.replayed) == (2, 0)
    assert _figures(ledger_engine) == (50, 0, 50)
    assert _balanced(ledger_engine) == []


def test_a_receipt_against_a_line_nobody_sent_is_refused_naming_it(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 0})

    with pytest.raises(FeedRefused, match=r"receipts\[0\]: no purchase_order PO-9 line 1"):
        incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 1, reference="PO-9")])


def test_a_receipt_dated_in_the_future_is_refused_and_moves_nothing(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])
    ahead = NOW + timedelta(hours=2)  # a local time sent as UTC

    with pytest.raises(FeedRefused, match=r"receipts\[0\]: received_at .* is ahead"):
        incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 10, received_at=ahead)])

    assert _figures(ledger_engine) == (0, 40, 0)


def test_a_replayed_receipt_changes_nothing(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])
    incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 10)])

    replay = incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 10)])

    assert (replay.applied, replay.replayed) == (0, 1)
    assert _figures(ledger_engine) == (10, 30, 10)
    assert _balanced(ledger_engine) == []


def test_a_batch_with_an_unknown_node_applies_nothing_and_names_every_refused_line(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 0})
    lines = [
        _line("e1"),
        _line("e2", reference="PO-2", node_id="WH-X"),
        _line("e3", reference="TR-1", kind="transfer"),
        _line("e4", reference="PO-3", sku="NOPE"),
    ]

    with pytest.raises(FeedRefused) as refused:
        incoming.push_incoming(ledger_engine, "erp", lines)

    assert [(r.line, r.reason) for r in refused.value.refused] == [
        (1, "unknown node WH-X"),
        (2, "transfer TR-1 line 1: a transfer names the node it comes from (from_node_id)"),
        (3, "unknown SKU NOPE"),
    ]
    assert str(refused.value).startswith("nothing applied: lines[1]: unknown node WH-X; ")
    assert _figures(ledger_engine) == (0, 0, 0)


def test_a_replayed_incoming_line_changes_nothing_and_partial_mode_keeps_the_good_lines(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])

    outcome = incoming.push_incoming(
        ledger_engine,
        "erp",
        [_line("e1"), _line("e2", reference="PO-2", node_id="WH-X"), _line("e3", "PO-3")],
        FeedMode.PARTIAL,
    )

    assert (outcome.applied, outcome.replayed) == (1, 1)
    assert [r.line for r in outcome.refused] == [1]
    assert _figures(ledger_engine) == (0, 80, 0)
    assert _balanced(ledger_engine) == []


def test_changing_a_line_moves_incoming_by_the_difference_and_cancelling_returns_what_is_open(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])
    incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 10)])

    incoming.push_incoming(
        ledger_engine, "erp", [_line("e2", quantity=30, expected_date=DUE + timedelta(days=3))]
    )
    assert _figures(ledger_engine) == (10, 20, 10)
    with pytest.raises(FeedRefused, match="quantity 5 is below the 10 already received"):
        incoming.push_incoming(ledger_engine, "erp", [_line("e3", quantity=5)])
    cancel = _line("e4", action="cancel", node_id=None, sku=None, quantity=None)
    incoming.push_incoming(ledger_engine, "erp", [cancel])

    assert _figures(ledger_engine) == (10, 0, 10)
    assert _line_state(ledger_engine) == (30, 10, "cancelled")
    with pytest.raises(FeedRefused, match="purchase_order PO-1 line 1 is cancelled"):
        incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r2", 1)])
    assert _balanced(ledger_engine) == []


def test_a_line_cannot_change_its_node_without_being_cancelled(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 0, "N2": 0})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])

    with pytest.raises(FeedRefused, match="arrives at N1 with TEE; cancel it"):
        incoming.push_incoming(ledger_engine, "erp", [_line("e2", node_id="N2")])


def test_a_transfer_arrives_at_a_node_that_never_stocked_the_sku(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 3})
    with transaction(ledger_engine) as session:  # N2 exists, with no TEE position yet
        session.add(
            Node(node_id="N2", name="N2", node_type="store", lat=0, lon=0, system_url="http://sim")
        )
    transfer = _line("e1", "TR-7", kind="transfer", node_id="N2", from_node_id="N1", quantity=3)

    incoming.push_incoming(ledger_engine, "erp", [transfer])
    incoming.push_receipts(ledger_engine, "pos-n2", [_receipt("r1", 3, "TR-7", kind="transfer")])

    assert _figures(ledger_engine, "N2") == (3, 0, 3)
    assert _balanced(ledger_engine) == []


def test_the_after_receipt_hook_is_called_with_the_skus_that_arrived(
    ledger_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])
    calls: list[set[str]] = []
    monkeypatch.setattr(incoming, "after_receipt", lambda engine, skus: calls.append(skus))

    incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 10)])
    incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 10)])  # a replay: no call

    assert calls == [{"TEE"}]


def test_a_failing_after_receipt_hook_leaves_the_receipt_committed(
    ledger_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])

    def broken(engine: Engine, skus: set[str]) -> None:
        raise RuntimeError("the retrier is down")

    monkeypatch.setattr(incoming, "after_receipt", broken)

    assert incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 10)]).applied == 1
    assert _figures(ledger_engine) == (10, 30, 10)


def test_a_receipt_dated_before_the_last_snapshot_closes_incoming_without_counting_twice(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])
    with transaction(ledger_engine) as session:  # the WMS count already has the 40 put away
        apply_snapshot(session, "wms-n1", "s1", "N1", NOW, {"TEE": 40})

    late = incoming.push_receipts(
        ledger_engine, "wms-n1", [_receipt("r1", 40, received_at=NOW - timedelta(hours=1))]
    )

    assert (late.applied, late.stale) == (1, 1)
    assert _figures(ledger_engine) == (40, 0, 40)
    assert _line_state(ledger_engine) == (40, 40, "received")
    assert _balanced(ledger_engine) == []


def test_a_snapshot_counted_before_a_receipt_keeps_the_received_units(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 5})
    incoming.push_incoming(ledger_engine, "erp", [_line("e1")])
    incoming.push_receipts(ledger_engine, "wms-n1", [_receipt("r1", 40)])

    with transaction(ledger_engine) as session:  # counted an hour before the goods came in
        apply_snapshot(session, "wms-n1", "s1", "N1", NOW - timedelta(hours=1), {"TEE": 5})

    assert _figures(ledger_engine) == (45, 0, 45)
    with transaction(ledger_engine) as session:
        assert reconcile(session) == []


# --- over real HTTP: the feeds, the receipts and availability by date ---


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApiServer]:
    postgres_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    with api_server(request.param, tmp_path, monkeypatch, postgres_url) as server:
        seed(server.engine, {"DC1": 7, "ST1": 2})
        with transaction(server.engine) as session:
            session.get(Node, "ST1").node_type = "store"  # type: ignore[union-attr]
            session.add(ChannelPool(channel="b2b", node_types=["warehouse"]))
        yield server


def _post(api: ApiServer, path: str, body: dict) -> httpx.Response:
    with httpx.Client(base_url=api.url, headers=api.headers(api.ops), timeout=30) as ops:
        return ops.post(path, json=body)


def _availability(api: ApiServer, channel: str | None = None) -> dict:
    params = {"sku": "TEE"} | ({"channel": channel} if channel else {})
    with httpx.Client(base_url=api.url, headers=api.headers(api.admin), timeout=30) as admin:
        answer = admin.get("/v1/availability", params=params)
    assert answer.status_code == 200, answer.text
    (tee,) = answer.json()
    return tee


PO_LINES = {
    "lines": [
        {"event_id": "e1", "kind": "purchase_order", "reference": "PO-1", "line": 1,
         "node_id": "DC1", "sku": "TEE", "quantity": 40, "expected_date": "2026-12-14"},
        {"event_id": "e2", "kind": "purchase_order", "reference": "PO-1", "line": 2,
         "node_id": "ST1", "sku": "TEE", "quantity": 5, "expected_date": "2026-12-14"},
        {"event_id": "e3", "kind": "transfer", "reference": "TR-1", "line": 1, "node_id": "DC1",
         "from_node_id": "ST1", "sku": "TEE", "quantity": 2, "expected_date": "2026-12-10"},
    ]
}  # fmt: skip


def test_availability_answers_incoming_units_by_date_for_the_nodes_a_channel_sells_from(
    api: ApiServer,
) -> None:
    answer = _post(api, "/v1/feeds/erp/incoming", PO_LINES)
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == 3

    everyone = _availability(api)
    b2b = _availability(api, "b2b")

    assert (everyone["total"], everyone["by_node"]) == (9, {"DC1": 7, "ST1": 2})
    assert everyone["incoming"] == [
        {"date": "2026-12-10", "units": 2},
        {"date": "2026-12-14", "units": 45},
    ]
    assert b2b["total"] == 7 and b2b["incoming"][1] == {"date": "2026-12-14", "units": 40}
    coming = [IncomingUnits(**i) for i in b2b["incoming"]]
    assert available_on(date(2026, 12, 14), b2b["total"], coming) == 7 + 2 + 40


def test_a_receipt_over_http_makes_the_units_available_now_and_an_over_receipt_is_a_422(
    api: ApiServer,
) -> None:
    _post(api, "/v1/feeds/erp/incoming", PO_LINES)
    receipt = {"event_id": "r1", "kind": "purchase_order", "reference": "PO-1", "line": 1,
               "quantity": 30, "received_at": NOW.isoformat()}  # fmt: skip

    received = _post(api, "/v1/feeds/wms-dc1/receipts", {"receipts": [receipt]})
    over = _post(api, "/v1/feeds/wms-dc1/receipts", {"receipts": [receipt | {"event_id": "r2"}]})

    assert received.status_code == 200, received.text
    assert received.json() == {"applied": 1, "replayed": 0, "stale": 0, "refused": []}
    assert over.status_code == 422
    assert over.json()["message"] == (
        "nothing applied: receipts[0]: would receive 30 of purchase_order PO-1 line 1,"
        " which has 10 open"
    )
    tee = _availability(api)
    assert tee["by_node"]["DC1"] == 37
    assert tee["incoming"] == [
        {"date": "2026-12-10", "units": 2},
        {"date": "2026-12-14", "units": 15},
    ]
    assert _balanced(api.engine) == []


def test_an_incoming_feed_naming_an_unknown_node_is_a_422_naming_the_line(api: ApiServer) -> None:
    bad = {"lines": [PO_LINES["lines"][0], PO_LINES["lines"][1] | {"node_id": "WH-X"}]}

    answer = _post(api, "/v1/feeds/erp/incoming", bad)
    malformed = _post(api, "/v1/feeds/erp/incoming", {"lines": [{"event_id": "x"}]})

    assert answer.status_code == 422
    assert answer.json()["message"] == "nothing applied: lines[1]: unknown node WH-X"
    assert malformed.status_code == 422
    assert _availability(api)["incoming"] == []
