"""services.bid_prices and services.sourcing_policy on real SQLite and PostgreSQL: a refresh
counts the recorded orders of its window and stores the prices the fluid LP gives for them; an
inventory-aware channel's allocation pays (and explains) the opportunity cost; a channel without
the switch plans exactly as before."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest import approx
from sqlalchemy import Engine
from sqlmodel import select

from benchmarks.sourcing import whatif
from domain.configuration import ChannelSpec
from domain.geo import GeoPoint, distance_km
from domain.orders import DeliveryMethod, OrderLine, OrderState, OrderStatus
from domain.sla import uniform_sla_policy
from ledger import bid_prices as store
from ledger import stock
from ledger.db import create_schema, make_engine, transaction
from ledger.orders_view import project
from ledger.tables import BidPrice, BidPriceRun, Channel, Node, Sku
from services import allocation, configuration
from services.allocation import AllocationRequest
from services.bid_prices import refresh_bid_prices
from services.sourcing_policy import forget_cached_policies, policy_for
from sourcing.bid_prices import DEFAULT_SMOOTHING
from sourcing.optimizer import DEFAULT_POLICY
from tests.support.orders_api import ledger_order

SLA = uniform_sla_policy(60)
NOW = datetime.now(UTC)
# Two warehouses on the equator, 10 degrees (1,112 km) apart; customers gather near the first.
NEAR = GeoPoint(lat=0.0, lon=0.0)
FAR = GeoPoint(lat=0.0, lon=10.0)
CUSTOMERS = GeoPoint(lat=0.5, lon=0.5)


def _network(engine: Engine, near_units: int, far_units: int) -> None:
    with transaction(engine) as session:
        session.add(Sku(sku="TEE", name="TEE"))
        for node_id, at in (("WH-NEAR", NEAR), ("WH-FAR", FAR)):
            session.add(
                Node(node_id=node_id, name=node_id, node_type="warehouse", lat=at.lat, lon=at.lon,
                     system_url="http://sim")
            )  # fmt: skip
        for channel, aware in (("web", True), ("b2b", False)):
            session.add(Channel(channel=channel, name=channel, channel_type="dtc",
                                inventory_aware=aware))  # fmt: skip
        session.flush()
        stock.open_position(session, "WH-NEAR", "TEE", near_units)
        stock.open_position(session, "WH-FAR", "TEE", far_units)
    forget_cached_policies()  # a fresh database per test


def _record_orders(engine: Engine, count: int, submitted_at: datetime, prefix: str) -> None:
    """Orders as the workflow projects them into the read model."""
    with transaction(engine) as session:
        for i in range(count):
            order = ledger_order(f"{prefix}-{i}", ["TEE"], submitted_at=submitted_at)
            order.ship_to.location = CUSTOMERS
            state = OrderState(order=order, status=OrderStatus.ALLOCATED)
            project(session, state.model_dump(mode="json"))


def _request(order_id: str, channel: str) -> AllocationRequest:
    return AllocationRequest(
        order_id=order_id,
        lines=[OrderLine(line_no=1, sku="TEE", quantity=1)],
        destination=CUSTOMERS,
        delivery_method=DeliveryMethod.HOME,
        channel=channel,
    )


def _predicted_near_price() -> float:
    """The LP's dual: 20 orders expected this week (80 over the 4-week window) and 5 units near,
    so the marginal unit near saves shipping the 6th customer from far: the lanes' difference."""
    per_km = DEFAULT_POLICY.unit_cost_per_km
    return per_km * (distance_km(FAR, CUSTOMERS) - distance_km(NEAR, CUSTOMERS))


def test_a_refresh_stores_the_prices_the_lp_gives_for_the_windows_orders(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, near_units=5, far_units=200)
    _record_orders(ledger_engine, 80, NOW - timedelta(days=3), "recent")
    _record_orders(ledger_engine, 500, NOW - timedelta(days=40), "old")  # outside the window

    refreshed = refresh_bid_prices(ledger_engine, NOW)

    assert (refreshed.status, refreshed.orders_counted) == ("ok", 80)
    assert (refreshed.regions, refreshed.classes, refreshed.nodes, refreshed.skus) == (1, 1, 2, 1)
    with transaction(ledger_engine) as session:
        prices = store.prices_of(session, refreshed.run_id)
        run = session.get(BidPriceRun, refreshed.run_id)
        assert run is not None and run.orders_counted == 80 and run.solve_seconds >= 0
    assert set(prices) == {("WH-NEAR", "TEE")}  # the far one has stock to spare: no price
    assert abs(prices[("WH-NEAR", "TEE")] - _predicted_near_price()) < 1e-5


def test_a_refresh_replaces_the_previous_prices_and_an_empty_history_stores_none(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, near_units=5, far_units=200)
    _record_orders(ledger_engine, 80, NOW - timedelta(days=30), "month-ago")
    first = refresh_bid_prices(ledger_engine, NOW - timedelta(days=2))

    second = refresh_bid_prices(ledger_engine, NOW + timedelta(days=2))  # those orders aged out

    assert first.prices == 1
    assert (second.status, second.orders_counted, second.prices) == ("ok", 0, 0)
    with transaction(ledger_engine) as session:
        assert session.exec(select(BidPrice)).all() == []
        assert store.latest_run_id(session) == second.run_id
        assert policy_for(session, "web") == DEFAULT_POLICY


def test_a_refresh_stores_the_new_prices_averaged_with_those_in_force_and_a_retry_changes_nothing(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, near_units=5, far_units=200)
    _record_orders(ledger_engine, 80, NOW - timedelta(days=3), "recent")
    first = refresh_bid_prices(ledger_engine, NOW - timedelta(hours=1))
    with transaction(ledger_engine) as session:  # the near shelf restocked: no scarcity left
        stock.adjust_on_hand(session, "WH-NEAR", "TEE", 195, cause="receipt")

    second = refresh_bid_prices(ledger_engine, NOW)
    retried = refresh_bid_prices(ledger_engine, NOW)
    late = refresh_bid_prices(ledger_engine, NOW - timedelta(minutes=30))

    with transaction(ledger_engine) as session:
        first_price = _predicted_near_price()
        # The LP alone would now price the near unit at 0; half the price in force stays.
        assert store.prices_of(session, second.run_id) == {
            ("WH-NEAR", "TEE"): approx(first_price * DEFAULT_SMOOTHING, abs=1e-5)
        }
        assert len(session.exec(select(BidPriceRun)).all()) == 2
        assert store.latest_run_id(session) == second.run_id
    assert first.prices == 1
    assert retried.run_id == late.run_id == second.run_id


def test_an_inventory_aware_channels_allocation_explains_the_opportunity_cost(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, near_units=5, far_units=200)
    _record_orders(ledger_engine, 80, NOW - timedelta(days=3), "recent")
    refresh_bid_prices(ledger_engine, NOW)
    price = _predicted_near_price()

    result = allocation.allocate(ledger_engine, SLA, _request("o-web", "web"))

    # The near node is still the cheaper one (its price is exactly the lanes' difference, and
    # ties go to the plan found first), and its unit carries the opportunity cost.
    assert [s.node_id for s in result.shipments] == ["WH-NEAR"]
    assert f"includes opportunity cost {price:.2f} of scarce stock" in result.explanation
    assert f"WH-NEAR {price:.2f}" in result.explanation


def test_a_channel_without_the_switch_plans_as_before(ledger_engine: Engine) -> None:
    _network(ledger_engine, near_units=5, far_units=200)
    _record_orders(ledger_engine, 80, NOW - timedelta(days=3), "recent")
    before = allocation.allocate(ledger_engine, SLA, _request("o-before", "b2b"))
    refresh_bid_prices(ledger_engine, NOW)

    after = allocation.allocate(ledger_engine, SLA, _request("o-after", "b2b"))

    with transaction(ledger_engine) as session:
        assert policy_for(session, "b2b") is DEFAULT_POLICY
        assert policy_for(session, "web").bid_price("WH-NEAR", "TEE") > 0
    assert [s.node_id for s in after.shipments] == [s.node_id for s in before.shipments]
    assert "opportunity" not in after.explanation
    assert after.explanation.replace("o-after", "") == before.explanation.replace("o-before", "")


def test_the_channel_configuration_turns_the_switch_on_and_policy_for_follows_at_once(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, near_units=5, far_units=200)
    _record_orders(ledger_engine, 80, NOW - timedelta(days=3), "recent")
    refresh_bid_prices(ledger_engine, NOW)
    with transaction(ledger_engine) as session:
        assert policy_for(session, "b2b") is DEFAULT_POLICY  # cached: switch off
    spec = ChannelSpec(channel="b2b", name="b2b", channel_type="dtc", inventory_aware=True)

    with transaction(ledger_engine) as session:
        applied = configuration.apply_channels(session, [spec], "tests")

    assert applied.updated == ["b2b"]
    with transaction(ledger_engine) as session:
        assert session.get(Channel, "b2b").inventory_aware is True  # type: ignore[union-attr]
        assert policy_for(session, "b2b").bid_price("WH-NEAR", "TEE") > 0


def test_opendom_bid_prices_refresh_then_show_prints_the_run_and_its_price(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = tmp_path / "ledger.db"
    engine = make_engine(f"sqlite:///{database}")
    create_schema(engine)
    _network(engine, near_units=5, far_units=200)
    _record_orders(engine, 80, datetime.now(UTC) - timedelta(days=3), "recent")
    engine.dispose()
    env = os.environ | {"DATABASE_URL": f"sqlite:///{database}"}

    def opendom(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cli", "bid-prices", *args],
            cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
            timeout=120, check=True,
        )  # fmt: skip
        return done.stdout

    refreshed = opendom("refresh")
    shown = opendom("show")

    assert ": ok; 80 orders in 1 regions (1 classes), 2 nodes x 1 SKUs; 1 positive prices" in (
        refreshed
    )
    run_id = refreshed.split()[1].rstrip(":")
    assert f"* {run_id}" in shown
    assert "WH-NEAR                  TEE" in shown and f"{_predicted_near_price():.4f}" in shown


# A node near two customer regions keeps its scarce units for the region with no other close
# node: X sits between A and B, Y only near A.
X, Y = GeoPoint(lat=0.0, lon=0.0), GeoPoint(lat=0.0, lon=-3.0)
REGION_A, REGION_B = GeoPoint(lat=0.2, lon=-1.0), GeoPoint(lat=0.2, lon=3.0)


def _two_regions(engine: Engine) -> None:
    with transaction(engine) as session:
        session.add(Sku(sku="TEE", name="TEE"))
        for node_id, at in (("X", X), ("Y", Y)):
            session.add(
                Node(node_id=node_id, name=node_id, node_type="warehouse", lat=at.lat, lon=at.lon,
                     system_url="http://sim")
            )  # fmt: skip
        for channel, aware in (("web", True), ("b2b", False)):
            session.add(Channel(channel=channel, name=channel, channel_type="dtc",
                                inventory_aware=aware))  # fmt: skip
        session.flush()
        stock.open_position(session, "X", "TEE", 10)  # 20 orders from B expected this week
        stock.open_position(session, "Y", "TEE", 100)
    forget_cached_policies()
    with transaction(engine) as session:
        for region, count, name in ((REGION_A, 40, "a"), (REGION_B, 80, "b")):
            for i in range(count):
                order = ledger_order(f"{name}-{i}", ["TEE"], NOW - timedelta(days=2))
                order.ship_to.location = region
                state = OrderState(order=order, status=OrderStatus.ALLOCATED)
                project(session, state.model_dump(mode="json"))


def test_bid_prices_send_an_order_past_a_node_whose_units_another_region_needs_more(
    ledger_engine: Engine,
) -> None:
    _two_regions(ledger_engine)
    refreshed = refresh_bid_prices(ledger_engine, NOW)
    with transaction(ledger_engine) as session:
        prices = store.prices_of(session, refreshed.run_id)
    near_b = distance_km(Y, REGION_B) - distance_km(X, REGION_B)  # B's saving per unit at X
    request = {"lines": [OrderLine(line_no=1, sku="TEE", quantity=1)], "destination": REGION_A,
               "delivery_method": DeliveryMethod.HOME}  # fmt: skip

    web = allocation.allocate(
        ledger_engine, SLA, AllocationRequest(order_id="o-web", channel="web", **request)
    )
    b2b = allocation.allocate(
        ledger_engine, SLA, AllocationRequest(order_id="o-b2b", channel="b2b", **request)
    )

    assert set(prices) == {("X", "TEE")}
    assert abs(prices[("X", "TEE")] - DEFAULT_POLICY.unit_cost_per_km * near_b) < 1e-5
    assert [s.node_id for s in b2b.shipments] == ["X"]  # nearest and cheapest without prices
    assert [s.node_id for s in web.shipments] == ["Y"]  # X's units are worth more to region B
    assert "runner-up X" in web.explanation


def test_the_what_if_replays_recorded_orders_under_the_live_policy_beside_the_default(
    tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    create_schema(engine)
    _two_regions(engine)
    refresh_bid_prices(engine, NOW)
    engine.dispose()
    since = (NOW - timedelta(days=7)).date().isoformat()

    code = whatif.main(
        ["--database", url, "--since", since, "--channel", "web", "--candidate", "default"]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "120 orders of channel web" in out and "live (bid prices)" in out
    # Replayed by (created_at, order id): A's orders first. Without prices the first 10 take X's
    # units; with them A goes to Y and X's 10 serve B: 20 orders from another node.
    assert "orders sourced from other nodes: 20" in out
    live, default = (float(v) for v in out.split("cost_paid")[1].split()[:2])
    assert live < default
