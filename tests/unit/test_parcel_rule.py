"""The one rule of which shipments share a parcel (domain.parcels), and the sourcing benchmark's
parcels per order that applies it to a stream with repeat customers."""

from datetime import UTC, datetime, timedelta

from benchmarks.sourcing.grouping import parcels, repeat_customer_stream
from benchmarks.sourcing.instance import build_instance
from benchmarks.sourcing.policies import NearestPerItem
from benchmarks.sourcing.simulate import simulate
from domain.parcels import Allocated, ParcelKey, assign_parcels

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
KEY = ParcelKey("web", "C-1", "FR|69002|lyon|1 place bellecour", "lyon-wh")


def _at(minutes: float, key: ParcelKey = KEY, window: float = 1800, method: str = "home"):
    return Allocated(key, T0 + timedelta(minutes=minutes), window, method)


def test_shipments_of_one_key_within_the_first_ones_window_share_a_parcel() -> None:
    # 0 opens, 10 and 29 join; 30 is past the first's window and opens another, 45 joins it.
    assert assign_parcels([_at(0), _at(10), _at(29), _at(30), _at(45)]) == [0, 0, 0, 1, 1]


def test_another_key_a_pickup_or_no_window_never_shares() -> None:
    other_node = ParcelKey("web", "C-1", KEY.address_key, "paris-wh")
    stream = [_at(0), _at(1, key=other_node), _at(2, method="pickup"), _at(3, window=0), _at(4)]
    assert assign_parcels(stream) == [0, 1, 2, 3, 0]


def test_the_benchmark_groups_nothing_without_repeat_customers_and_saves_parcels_with_them() -> (
    None
):
    instance = build_instance(1, 300)
    outcome = simulate(instance, NearestPerItem())
    alone = repeat_customer_stream(instance, 0.0, 1800, 3600, seed=1)
    assert alone.repeat_orders == 0
    assert parcels(instance, outcome, alone, 1800) == outcome.packages
    repeat = repeat_customer_stream(instance, 0.5, 1800, 3600, seed=1)
    assert repeat.repeat_orders > 0
    assert parcels(instance, outcome, repeat, 1800) < outcome.packages


def test_two_carrier_services_of_one_customer_address_and_node_never_share() -> None:
    fast = ParcelKey(KEY.channel, KEY.customer_id, KEY.address_key, KEY.node_id, "dhl", "express")
    economy = ParcelKey(
        fast.channel, fast.customer_id, fast.address_key, fast.node_id, "dhl", "eco"
    )
    assert assign_parcels([_at(0, key=fast), _at(1, key=economy), _at(2, key=fast)]) == [0, 1, 0]
