"""services.checkout on real SQLite and PostgreSQL: the database answer, holds placed on the
chosen option's stock or refused, and a hold given back only by a caller who may see it."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from domain.errors import UnknownReference
from domain.geo import GeoPoint
from domain.orders import OrderLine
from ledger.db import transaction
from services import checkout
from services.checkout import HoldNotFound, HoldTerms, OptionUnavailable, PlacedHold
from sourcing.checkout import DeliveryOptionCode
from tests.support.ledger_fixtures import position, seed

HERE = GeoPoint(lat=0, lon=0)
NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)
ECONOMY = HoldTerms(DeliveryOptionCode.HOME_ECONOMY, timedelta(minutes=15))


def _lines(quantity: int) -> list[OrderLine]:
    return [OrderLine(line_no=1, sku="TEE", quantity=quantity)]


def test_a_hold_takes_the_chosen_options_units_until_it_expires(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 10})

    outcome = checkout.check_in_database(ledger_engine, "web", _lines(3), HERE, NOW, ECONOMY)

    assert outcome.hold is not None
    assert outcome.hold.hold_id.startswith("H-") and len(outcome.hold.hold_id) == 18
    assert outcome.hold.expires_at == NOW + timedelta(minutes=15)
    assert outcome.hold.option == DeliveryOptionCode.HOME_ECONOMY
    assert outcome.answer.lines[0].available
    assert position(ledger_engine, "WH-A") == (10, 0, 3)


def test_no_hold_is_placed_for_an_option_the_cart_does_not_have(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 10})  # a warehouse: no pickup
    pickup = HoldTerms(DeliveryOptionCode.PICKUP, timedelta(minutes=15))

    with pytest.raises(OptionUnavailable, match="hold_option: pickup is not available"):
        checkout.check_in_database(ledger_engine, "web", _lines(1), HERE, NOW, pickup)

    assert position(ledger_engine, "WH-A") == (10, 0, 0)


def test_a_cart_naming_an_unknown_sku_is_refused(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 10})
    lines = [*_lines(1), OrderLine(line_no=2, sku="HAT", quantity=1)]

    with pytest.raises(UnknownReference, match=r"lines\.sku: unknown HAT"):
        checkout.check_in_database(ledger_engine, "web", lines, HERE, NOW)


def test_a_hold_is_released_once_and_only_by_a_caller_who_may_see_it(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 10})
    now = datetime.now(UTC)
    hold = checkout.check_in_database(ledger_engine, "web", _lines(2), HERE, now, ECONOMY).hold
    assert hold is not None

    with pytest.raises(HoldNotFound, match=f"no hold {hold.hold_id}"):
        checkout.release_hold(ledger_engine, hold.hold_id, lambda channel: channel == "app")
    assert position(ledger_engine, "WH-A") == (10, 0, 2)

    def web_only(channel: str) -> bool:
        return channel == "web"

    assert checkout.release_hold(ledger_engine, hold.hold_id, web_only) == 2
    assert checkout.release_hold(ledger_engine, hold.hold_id, web_only) == 0
    with pytest.raises(HoldNotFound):
        checkout.release_hold(ledger_engine, "H-none", web_only)
    assert position(ledger_engine, "WH-A") == (10, 0, 0)


def test_a_hold_placed_again_under_its_id_holds_once(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 10})

    for _ in range(2):
        with transaction(ledger_engine) as tx:
            _, placed = checkout.run_checkout_check(
                tx, "web", _lines(3), HERE, NOW, ECONOMY, hold_id="H-mine"
            )
        assert placed == PlacedHold("H-mine", NOW + timedelta(minutes=15), ECONOMY.option)

    assert position(ledger_engine, "WH-A") == (10, 0, 3)


def test_a_deactivated_channel_gets_no_quote_from_the_database_or_the_cache(
    ledger_engine: Engine,
) -> None:
    from ledger.availability_cache import AvailabilityCache
    from ledger.tables import Channel
    from services.references import RetiredChannel

    seed(ledger_engine, {"WH-A": 10})
    with transaction(ledger_engine) as session:
        session.add(Channel(channel="web", name="Web", channel_type="dtc", active=False))
    cache = AvailabilityCache(ledger_engine)
    cache.load()

    with pytest.raises(RetiredChannel, match="channel: web is deactivated"):
        checkout.check_in_database(ledger_engine, "web", _lines(1), HERE, NOW)
    assert checkout.answer_from_cache(cache, "web", _lines(1), HERE, NOW) is None
    assert checkout.answer_from_cache(cache, "amazon", _lines(1), HERE, NOW) is not None
