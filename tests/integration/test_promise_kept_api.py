"""GET /v1/promise-kept over real HTTP on real SQLite and PostgreSQL: order documents projected
into the read model with shipments on time and late, and the exact counts and shares the
endpoint reports for them, overall, per channel, per node and filtered."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import httpx
import pytest

from domain.orders import OrderState, OrderStatus, Shipment, ShipmentStatus
from ledger import orders_view
from ledger.db import transaction
from security.keys import issue_key
from security.roles import Role
from tests.support.api_server import ApiServer, api_server
from tests.support.orders_api import ledger_order

TODAY = datetime.now(UTC).date()
SHIP_BY = TODAY - timedelta(days=6)
PROMISED = TODAY - timedelta(days=4)


def _at(day: date, days_after: int | None) -> datetime | None:
    """Noon UTC that many days after `day` (None: it has not happened)."""
    if days_after is None:
        return None
    return datetime.combine(day, time(12), tzinfo=UTC) + timedelta(days=days_after)


def _shipment(
    order_id: str,
    n: int,
    node: str,
    shipped: int | None,
    delivered: int | None = None,
    status: ShipmentStatus | None = None,
    ship_by: date = SHIP_BY,
) -> Shipment:
    """Shipped (delivered) that many days after the ship-by (promised) date."""
    if status is None:
        status = ShipmentStatus.RELEASED
        status = ShipmentStatus.SHIPPED if shipped is not None else status
        status = ShipmentStatus.DELIVERED if delivered is not None else status
    return Shipment(
        shipment_id=f"{order_id}-S{n}",
        node_id=node,
        node_type="warehouse" if node.startswith("DC") else "store",
        lines=[{"line_no": 1, "sku": "TEE", "quantity": 1}],
        status=status,
        ship_by=ship_by,
        promised_date=ship_by + (PROMISED - SHIP_BY),
        shipped_at=_at(ship_by, shipped),
        delivered_at=_at(PROMISED, delivered),
    )


def _order(external_id: str, channel: str, *shipments: tuple) -> dict:
    order = ledger_order(external_id, ["TEE"]).model_copy(
        update={"channel": channel, "order_id": f"order-{channel}-{external_id}"}
    )
    state = OrderState(
        order=order,
        status=OrderStatus.IN_FULFILLMENT,
        version=3,
        shipments=[_shipment(order.order_id, n, *s) for n, s in enumerate(shipments, start=1)],
    )
    return state.model_dump(mode="json")


# (node, shipped days after ship-by, delivered days after promised[, status[, ship-by]])
HISTORY = [
    _order("1", "web", ("DC-A", 0, 0)),  # both kept
    _order("2", "web", ("DC-A", 2, 3)),  # shipped 2 days late, delivered 3 days late
    _order("3", "store", ("ST-B", -1, 1)),  # shipped early, delivered a day late
    _order("4", "store", ("ST-B", None)),  # still at the node, past its ship-by: overdue
    _order("5", "web", ("ST-B", 0, 0, None, TODAY - timedelta(days=40))),  # due before the window
    # Moved from DC-A before it left: the promise is the second shipment's, kept at ST-B.
    _order("6", "web", ("DC-A", None, None, ShipmentStatus.REALLOCATED), ("ST-B", 0)),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApiServer]:
    postgres_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    with api_server(request.param, tmp_path, monkeypatch, postgres_url) as server:
        with transaction(server.engine) as tx:
            for document in HISTORY:
                assert orders_view.project(tx, document)
        yield server


def _report(api: ApiServer, **params: str) -> dict:
    with httpx.Client(base_url=api.url, headers=api.headers(api.ops), timeout=30) as ops:
        answer = ops.get(
            "/v1/promise-kept", params={"since": str(TODAY - timedelta(days=10))} | params
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _counts(figures: dict) -> tuple:
    return (
        figures["shipments"],
        figures["shipped"],
        figures["shipped_on_time"],
        figures["overdue"],
        figures["delivered"],
        figures["delivered_on_time"],
    )


def test_promise_kept_reports_the_shares_its_history_predicts(api: ApiServer) -> None:
    report = _report(api)
    overall = report["overall"]

    # Orders 1, 2, 3, 4 and 6's second shipment; 5 is due before the window.
    assert _counts(overall) == (5, 4, 3, 1, 3, 1)
    assert overall["shipped_on_time_share"] == 3 / 4 and overall["shipped_late"] == 1
    assert overall["average_days_late_shipping"] == 2.0
    assert overall["delivered_on_time_share"] == 1 / 3 and overall["delivered_late"] == 2
    assert overall["average_days_late_delivery"] == (3 + 1) / 2
    assert report["since"] == str(TODAY - timedelta(days=10)) and report["as_of"] == str(TODAY)

    channels = {c["channel"]: c for c in report["channels"]}
    assert list(channels) == ["store", "web"]
    assert _counts(channels["web"]) == (3, 3, 2, 0, 2, 1)
    assert channels["web"]["shipped_on_time_share"] == 2 / 3
    assert _counts(channels["store"]) == (2, 1, 1, 1, 1, 0)

    nodes = {n["node_id"]: n for n in report["nodes"]}
    assert list(nodes) == ["DC-A", "ST-B"]
    assert _counts(nodes["DC-A"]) == (2, 2, 1, 0, 2, 1)  # its moved shipment is not its to keep
    assert nodes["DC-A"]["shipped_on_time_share"] == 0.5
    assert _counts(nodes["ST-B"]) == (3, 2, 2, 1, 1, 0)


def test_promise_kept_filters_by_channel_node_and_ship_by_window(api: ApiServer) -> None:
    assert _counts(_report(api, channel="store")["overall"]) == (2, 1, 1, 1, 1, 0)
    by_node = _report(api, node_id="DC-A")
    assert _counts(by_node["overall"]) == (2, 2, 1, 0, 2, 1)
    assert [n["node_id"] for n in by_node["nodes"]] == ["DC-A"]
    # Order 5, due 40 days ago, is in a window that starts before it.
    assert _report(api, since=str(TODAY - timedelta(days=50)))["overall"]["shipments"] == 6
    assert _report(api, until=str(SHIP_BY - timedelta(days=1)))["overall"]["shipments"] == 0


def test_promise_kept_is_for_ops_and_refuses_a_window_that_ends_before_it_starts(
    api: ApiServer,
) -> None:
    with transaction(api.engine) as tx:
        channel_key = issue_key(tx, "web shop", Role.CHANNEL, channel="web")
    with httpx.Client(base_url=api.url, timeout=30) as http:
        refused = http.get("/v1/promise-kept", headers=api.headers(channel_key))
        admin = http.get("/v1/promise-kept", headers=api.headers(api.admin))
        backwards = http.get(
            "/v1/promise-kept",
            headers=api.headers(api.ops),
            params={"since": str(TODAY), "until": str(TODAY - timedelta(days=1))},
        )
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert admin.status_code == 200 and admin.json()["overall"]["shipments"] == 5
    assert backwards.status_code == 422 and backwards.json()["error"] == "invalid_request"


@pytest.mark.parametrize("params", [{"since": "0001-01-05"}, {"until": "0001-01-10"}])
def test_promise_kept_refuses_a_window_no_history_can_reach_naming_the_edge(
    api: ApiServer, params: dict[str, str]
) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        answer = http.get("/v1/promise-kept", headers=api.headers(api.ops), params=params)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert next(iter(params)) in answer.json()["message"]
