"""Pre-orders at checkout on real SQLite and PostgreSQL (services.preorders through
services.checkout): a channel that allows them is offered the incoming stock's date when the cart
cannot go from stock now, after what the waiting orders want; other channels are not; the cache
hands such carts to the database; a pre-order is never held; the channel switch is configuration
like any other."""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from domain.configuration import ChannelSpec
from domain.geo import GeoPoint
from domain.orders import (
    Address,
    Customer,
    DeliveryMethod,
    DeliveryOptionCode,
    Order,
    OrderLine,
    OrderState,
    OrderStatus,
    OrderType,
    Shipment,
)
from ledger import orders_view
from ledger.availability_cache import AvailabilityCache
from ledger.db import transaction
from ledger.tables import Channel
from services import checkout, configuration, incoming, preorders
from services.checkout import HoldTerms
from services.preorders import PreorderNotHeld, PreordersNotAllowed, PreorderWithoutDate
from tests.support.ledger_fixtures import seed

HERE = GeoPoint(lat=0, lon=0.5)  # ~55 km from the fixtures' nodes: ground, one carrier day
NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)  # a Tuesday, before the cut-off
DUE = date(2026, 12, 3)  # the purchase order's Thursday
# Landed Thursday after the day's work, shipped Friday, delivered Monday.
PROMISED = date(2026, 12, 7)


def _channels(engine: Engine, **allow: bool) -> None:
    specs = [
        ChannelSpec(channel=c, name=c, channel_type="dtc", allow_preorders=a)
        for c, a in allow.items()
    ]
    with transaction(engine) as session:
        configuration.apply_channels(session, specs, "test")


def _purchase_order(engine: Engine, units: int, due: date = DUE, reference: str = "PO-1") -> None:
    line = SimpleNamespace(
        event_id=f"{reference}-e", action="upsert", kind="purchase_order", reference=reference,
        line=1, node_id="WH-A", sku="TEE", quantity=units, expected_date=due, from_node_id=None,
    )  # fmt: skip
    incoming.push_incoming(engine, "erp", [line])


def _waiting(engine: Engine, name: str, units: int, on_its_way: int = 0) -> None:
    """A backordered order of another channel wanting `units` TEE, in the read model; with
    `on_its_way`, ship-partial: that many already in a shipment."""
    order = Order(
        order_id=f"order-shop-{name}", channel="shop", external_id=name,
        order_type=OrderType.DTC, priority=5, customer=Customer(customer_id="C"),
        ship_to=Address(name="A", line1="1", city="X", postal_code="1", country="FR",
                        location=HERE),
        delivery_method=DeliveryMethod.HOME,
        lines=[OrderLine(line_no=1, sku="TEE", quantity=units)], submitted_at=NOW,
    )  # fmt: skip
    shipments = [
        Shipment(shipment_id=f"{order.order_id}-S1", node_id="WH-A", node_type="warehouse",
                 lines=[OrderLine(line_no=1, sku="TEE", quantity=on_its_way)])
    ] if on_its_way else []  # fmt: skip
    status = OrderStatus.PARTIALLY_BACKORDERED if on_its_way else OrderStatus.BACKORDERED
    state = OrderState(order=order, status=status, version=1, shipments=shipments)
    with transaction(engine) as session:
        orders_view.project(session, state.model_dump(mode="json"))


def _cart(quantity: int) -> list[OrderLine]:
    return [OrderLine(line_no=1, sku="TEE", quantity=quantity)]


def _codes(engine: Engine, channel: str, quantity: int) -> dict[str, date]:
    answer = checkout.check_in_database(engine, channel, _cart(quantity), HERE, NOW).answer
    return {o.code: o.promised_date for o in answer.options}


@pytest.fixture(autouse=True)
def _fresh_switches() -> None:
    preorders.forget_preorder_channels()


def test_a_channel_that_allows_preorders_is_promised_the_purchase_orders_date(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 2})
    _channels(ledger_engine, web=True, shop=False)
    _purchase_order(ledger_engine, 10)

    answer = checkout.check_in_database(ledger_engine, "web", _cart(5), HERE, NOW).answer

    assert not answer.sellable
    (option,) = answer.options
    assert option.code == DeliveryOptionCode.PREORDER
    assert option.promised_date == PROMISED
    assert [(s.node_id, s.ship_by) for s in option.shipments] == [("WH-A", date(2026, 12, 4))]
    assert _codes(ledger_engine, "shop", 5) == {}  # no pre-orders there
    # A cart the stock covers gets the stock's options only.
    assert DeliveryOptionCode.PREORDER not in _codes(ledger_engine, "web", 2)


def test_units_the_waiting_orders_want_are_not_promised_again(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 0})
    _channels(ledger_engine, web=True)
    _purchase_order(ledger_engine, 10)
    _purchase_order(ledger_engine, 10, due=date(2026, 12, 10), reference="PO-2")

    assert _codes(ledger_engine, "web", 6)["preorder"] == PROMISED
    _waiting(ledger_engine, "1", 6)  # takes 6 of the first 10: 4 left there
    assert _codes(ledger_engine, "web", 4)["preorder"] == PROMISED
    # 6 more come from the second purchase order (the 10th, shipped the 11th, there the 14th).
    assert _codes(ledger_engine, "web", 6)["preorder"] == date(2026, 12, 14)
    _waiting(ledger_engine, "2", 10)
    assert "preorder" not in _codes(ledger_engine, "web", 5)  # 4 left of 20 coming


def test_units_already_on_their_way_to_a_waiting_order_are_not_counted_again(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 0})
    _channels(ledger_engine, web=True)
    _purchase_order(ledger_engine, 10)
    _waiting(ledger_engine, "1", 8, on_its_way=2)  # 6 still wanted: 4 of the 10 left

    with Session(ledger_engine) as session:
        assert preorders.units_waiting(session, {"TEE", "MUG"}) == {"TEE": 6}
    assert _codes(ledger_engine, "web", 4)["preorder"] == PROMISED
    assert "preorder" not in _codes(ledger_engine, "web", 5)


def test_the_cache_hands_a_short_cart_of_a_preorder_channel_to_the_database(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 2})
    _channels(ledger_engine, web=True, shop=False)
    _purchase_order(ledger_engine, 10)
    cache = AvailabilityCache(ledger_engine)
    cache.load()

    assert checkout.answer_from_cache(cache, "web", _cart(5), HERE, NOW) is None
    assert checkout.answer_from_cache(cache, "web", _cart(2), HERE, NOW) is not None
    short = checkout.answer_from_cache(cache, "shop", _cart(5), HERE, NOW)
    assert short is not None and short.options == []


def test_a_preorder_is_not_held(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 0})
    _channels(ledger_engine, web=True)
    _purchase_order(ledger_engine, 10)
    terms = HoldTerms(DeliveryOptionCode.PREORDER, timedelta(minutes=15))

    with pytest.raises(PreorderNotHeld, match="hold_option: a pre-order holds no stock"):
        checkout.check_in_database(ledger_engine, "web", _cart(1), HERE, NOW, terms)


def test_intake_takes_a_preorder_only_on_a_channel_that_allows_them_and_with_its_date(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 0})
    _channels(ledger_engine, web=True, shop=False)

    with Session(ledger_engine) as session:
        preorders.refuse_preorder(session, "web", PROMISED)
        with pytest.raises(PreordersNotAllowed, match="delivery_option: channel shop"):
            preorders.refuse_preorder(session, "shop", PROMISED)
        with pytest.raises(PreordersNotAllowed, match="channel nowhere"):
            preorders.refuse_preorder(session, "nowhere", PROMISED)
        with pytest.raises(PreorderWithoutDate, match="promised_date"):
            preorders.refuse_preorder(session, "web", None)


def test_allow_preorders_is_stored_and_read_back_as_the_network_export_reads_it(
    ledger_engine: Engine,
) -> None:
    _channels(ledger_engine, web=False)
    _channels(ledger_engine, web=True)

    with Session(ledger_engine) as session:
        row = session.get(Channel, "web")
        assert row is not None and row.allow_preorders is True
        assert configuration.channel_spec(row, None).allow_preorders is True
    assert preorders.preorder_channels(ledger_engine) == {"web"}
