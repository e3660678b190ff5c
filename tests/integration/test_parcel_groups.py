"""Parcel groups (services.parcels) on real SQLite and PostgreSQL: shipments of one customer to
one address at one node on one carrier service within the window share a group and one label
claim; another address, another node, another service, a closed window or a pickup do not; a member that leaves gives back an unused claim,
and concurrent joins of one key find one group."""

import threading
from datetime import UTC, datetime, timedelta

from domain.orders import Address
from domain.parcels import ParcelKey, address_key
from services.parcels import (
    JoinRequest,
    join_parcel,
    label_step,
    leave_parcel,
    record_parcel_label,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
HOME = Address(
    name="Ada Lovelace",
    line1="1 Place Bellecour",
    city="Lyon",
    postal_code="69002",
    country="FR",
    location={"lat": 45.76, "lon": 4.83},
)


def _join(engine, n: int, at: datetime = T0, **changes) -> object:
    values = {
        "order_id": f"order-web-{n}",
        "shipment_id": f"order-web-{n}-S1",
        "channel": "web",
        "customer_id": "C-1",
        "ship_to": HOME,
        "node_id": "lyon-wh",
        "units": 2,
        "delivery_method": "home",
        "window_seconds": 1800,
    }
    values.update(changes)
    return join_parcel(engine, JoinRequest(**values), now=lambda: at)


def test_two_orders_of_one_customer_to_one_address_within_the_window_share_one_parcel(
    ledger_engine,
) -> None:
    first = _join(ledger_engine, 1)
    respelled = HOME.model_copy(update={"line1": "1, place  BELLECOUR", "postal_code": "69 002"})
    second = _join(ledger_engine, 2, at=T0 + timedelta(minutes=10), ship_to=respelled)

    assert first.parcel_id is not None and second.parcel_id == first.parcel_id
    assert second.closes_at == first.closes_at == T0 + timedelta(seconds=1800)
    assert (first.with_orders, second.with_orders) == ([], ["order-web-1"])
    # Once: a retried join answers the same group.
    assert _join(ledger_engine, 2, at=T0 + timedelta(hours=5)).parcel_id == first.parcel_id


def test_the_first_member_at_its_label_step_buys_the_label_and_the_other_reuses_it(
    ledger_engine,
) -> None:
    parcel = _join(ledger_engine, 1).parcel_id
    _join(ledger_engine, 2, units=3)

    buy = label_step(ledger_engine, "order-web-2-S1")
    assert (buy.action, buy.units, buy.shared_with) == ("buy", 5, ["order-web-1"])
    assert label_step(ledger_engine, "order-web-2-S1").action == "buy"  # its own retry
    waiting = label_step(ledger_engine, "order-web-1-S1")
    assert (waiting.action, waiting.claimed_by) == ("wait", "order-web-2-S1")

    record_parcel_label(ledger_engine, parcel, "colissimo", "standard", "TRK-1", "LBL-1")
    reuse = label_step(ledger_engine, "order-web-1-S1")
    assert (reuse.action, reuse.tracking_number, reuse.label_id) == ("reuse", "TRK-1", "LBL-1")
    assert reuse.shared_with == ["order-web-2"]


def test_a_member_that_leaves_gives_back_its_unused_claim_and_the_other_buys_alone(
    ledger_engine,
) -> None:
    parcel = _join(ledger_engine, 1).parcel_id
    _join(ledger_engine, 2, units=3)
    assert label_step(ledger_engine, "order-web-1-S1").action == "buy"

    left = leave_parcel(ledger_engine, "order-web-1-S1")
    assert (left.parcel_id, left.remaining_orders) == (parcel, ["order-web-2"])
    assert leave_parcel(ledger_engine, "order-web-1-S1").parcel_id is None  # once

    buy = label_step(ledger_engine, "order-web-2-S1")
    assert (buy.action, buy.units, buy.shared_with) == ("buy", 3, [])
    assert label_step(ledger_engine, "order-web-1-S1").action == "alone"


def test_another_address_node_customer_or_a_closed_window_opens_another_parcel(
    ledger_engine,
) -> None:
    first = _join(ledger_engine, 1).parcel_id
    elsewhere = HOME.model_copy(update={"line1": "2 Place Bellecour"})
    others = [
        _join(ledger_engine, 2, ship_to=elsewhere),
        _join(ledger_engine, 3, node_id="paris-wh"),
        _join(ledger_engine, 4, customer_id="C-2"),
        _join(ledger_engine, 5, at=T0 + timedelta(seconds=1800)),
    ]
    parcels = {first} | {o.parcel_id for o in others}
    assert len(parcels) == 5


def test_a_pickup_or_a_channel_without_a_window_is_never_grouped(ledger_engine) -> None:
    assert _join(ledger_engine, 1, delivery_method="pickup").parcel_id is None
    assert _join(ledger_engine, 2, window_seconds=0).parcel_id is None


def test_a_group_whose_label_is_claimed_takes_no_new_member(ledger_engine) -> None:
    first = _join(ledger_engine, 1).parcel_id
    label_step(ledger_engine, "order-web-1-S1")
    assert _join(ledger_engine, 2, at=T0 + timedelta(minutes=1)).parcel_id != first


def test_concurrent_joins_of_one_key_find_one_parcel(ledger_engine) -> None:
    found: list[str | None] = []
    lock = threading.Lock()

    def join(n: int) -> None:
        joined = _join(ledger_engine, n)
        with lock:
            found.append(joined.parcel_id)

    threads = [threading.Thread(target=join, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and len(set(found)) == 1


def test_the_address_key_ignores_case_accents_punctuation_and_the_recipient() -> None:
    a = HOME.model_copy(
        update={"name": "A. Lovelace", "city": "LYÔN", "line1": "1 place Bellecour."}
    )
    assert address_key(a) == address_key(HOME) == "FR|69002|lyon|1 place bellecour"
    assert ParcelKey("web", "C-1", address_key(a), "n") == ParcelKey(
        "web", "C-1", address_key(HOME), "n"
    )


def test_a_fast_and_an_economy_shipment_of_one_customer_address_and_node_are_two_parcels(
    ledger_engine,
) -> None:
    fast = _join(ledger_engine, 1, carrier="dhl", service="express")
    economy = _join(ledger_engine, 2, at=T0 + timedelta(minutes=1), carrier="dhl", service="eco")
    also_fast = _join(
        ledger_engine, 3, at=T0 + timedelta(minutes=2), carrier="dhl", service="express"
    )

    assert fast.parcel_id is not None and economy.parcel_id not in (None, fast.parcel_id)
    assert also_fast.parcel_id == fast.parcel_id and also_fast.with_orders == ["order-web-1"]
    # The service the parcel's label is bought for is the one its members ship on.
    step = label_step(ledger_engine, "order-web-2-S1")
    assert step.action == "buy" and step.shared_with == []
