"""The checkout check (sourcing.checkout), called directly: no Temporal, no database.

Its dates come from sourcing.promise since the checkout moved into the sourcing room; the rule
they replaced (the domain package's own promise module, now removed) is kept below as the oracle,
so any drift in the promise a customer is shown fails here rather than in production."""

import random
from datetime import UTC, date, datetime, timedelta

import numpy as np

from domain.carriers import COLLECT_CARRIER, CarrierService
from domain.network import NodeType
from sourcing.checkout import (
    CHECKOUT_CALENDAR,
    CHECKOUT_TRANSIT,
    DeliveryOptionCode,
    check_cart,
    option_date,
    relevant_candidates,
    shippable_totals,
)
from sourcing.model import TransitTable
from sourcing.promise import ship_date, transit_days, transit_days_many
from tests.support.candidates import HOME, lines, node

MONDAY = datetime(2026, 11, 23, 0, tzinfo=UTC)
TWO_WEEKS_HOURLY = [MONDAY + timedelta(hours=h) for h in range(14 * 24)]
BAND_EDGES = [edge + d for edge in (150, 800, 2000) for d in (-0.1, 0.0, 0.1)]
# Dates depend on distance only through the band, so the band edges are what matter most.
DISTANCES_KM = sorted({*map(float, range(0, 5001, 25)), *BAND_EDGES})


# The checkout's promise rule as the domain package wrote it before the move: the oracle.
def _old_next_working_day(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _old_handover_day(now: datetime) -> date:
    today = now.date()
    if today.weekday() < 5 and now.hour < 14:
        return today
    return _old_next_working_day(today)


def _old_transit_days(distance_km: float, service: str) -> int:
    bands = ((150, 1), (800, 2), (2000, 3))
    ground = next((days for limit, days in bands if distance_km <= limit), None)
    ground = ground if ground is not None else 5
    if service == "express":
        return max(1, ground - 1)
    return ground


def _old_promised_date(now: datetime, distance_km: float, service: str) -> date:
    day = _old_handover_day(now)
    for _ in range(_old_transit_days(distance_km, service)):
        day = _old_next_working_day(day)
    return day


def _old_option_date(now: datetime, code: DeliveryOptionCode, distance_km: float) -> date:
    if code == DeliveryOptionCode.PICKUP:
        return _old_handover_day(now)  # the old collection_ready_date
    service = "express" if code == DeliveryOptionCode.HOME_FAST else "ground"
    return _old_promised_date(now, distance_km, service)


def test_checkout_dates_match_the_old_promise_rule_every_hour_of_two_weeks_at_every_distance() -> (
    None
):
    mismatches = []
    for now in TWO_WEEKS_HOURLY:
        handover = ship_date(now, CHECKOUT_CALENDAR)
        if handover != _old_handover_day(now):
            mismatches.append((now, "handover", handover))
        for km in DISTANCES_KM:
            for code in DeliveryOptionCode:
                promised = option_date(handover, code, km)
                if promised != _old_option_date(now, code, km):
                    mismatches.append((now, code, km, promised))

    assert mismatches == []


def test_check_cart_dates_every_option_as_the_old_promise_rule_did() -> None:
    store = node("store", 5, {"A": 3}, node_type=NodeType.STORE, can_ship=False, can_pickup=True)
    warehouses = [node(f"w{km}", km, {"A": 3}) for km in (0, 100, 300, 900, 1900, 2600, 4000)]
    cart = lines(("A", 1))
    seen_codes = set()
    for now in TWO_WEEKS_HOURLY:
        for warehouse in warehouses:
            answer = check_cart(cart, HOME, [warehouse, store], now)

            for option in answer.options:
                seen_codes.add(option.code)
                farthest = max(s.distance_km for s in option.shipments)
                assert option.promised_date == _old_option_date(now, option.code, farthest)

    assert seen_codes == set(DeliveryOptionCode)


def test_the_checkout_answer_keeps_its_nodes_dates_and_json_shape() -> None:
    # The expected answer is the one the checkout gave before it left the domain package.
    store = node("store", 5, {"A": 3}, node_type=NodeType.STORE, can_ship=False, can_pickup=True)
    candidates = [node("near", 100, {"A": 1}), node("far", 900, {"A": 3, "B": 1}), store]
    friday_after_cutoff = datetime(2026, 11, 27, 15, tzinfo=UTC)

    answer = check_cart(lines(("A", 1)), HOME, candidates, friday_after_cutoff)

    def shipment(node_id: str, node_type: str, km: float) -> dict:
        return {
            "node_id": node_id,
            "node_type": node_type,
            "lines": [{"line_no": 1, "sku": "A", "quantity": 1}],
            "distance_km": km,
        }

    near = shipment("near", "warehouse", 100.2)
    assert answer.model_dump(mode="json") == {
        "lines": [
            {"line_no": 1, "sku": "A", "quantity": 1, "available": True, "units_available": 4}
        ],
        "options": [
            {
                "code": "home_fast",
                "promised_date": "2026-12-01",
                "shipments": [near],
                "pickup_node_id": None,
            },
            {
                "code": "home_economy",
                "promised_date": "2026-12-01",
                "shipments": [near],
                "pickup_node_id": None,
            },
            {
                "code": "pickup",
                "promised_date": "2026-11-30",
                "shipments": [shipment("store", "store", 0.0)],
                "pickup_node_id": "store",
            },
        ],
        "sellable": True,
    }


def test_one_distance_falls_in_the_same_transit_band_as_the_optimizers_array_lookup() -> None:
    services = [
        CarrierService(carrier="SIMEX", service=s) for s in ("ground", "express", "store-transfer")
    ]
    services.append(CarrierService(carrier=COLLECT_CARRIER, service="collect-in-store"))
    distances = np.array(sorted({*DISTANCES_KM, 300.0, 500.0, 1000.0, 2500.0, 1e9, 2e9}))
    for table in (TransitTable(), CHECKOUT_TRANSIT):
        for carrier in services:
            many = transit_days_many(table, carrier, distances)

            assert [transit_days(table, carrier, km) for km in distances] == many.tolist()


def test_pruning_candidates_never_changes_the_checkout_answer() -> None:
    rng = random.Random(5)
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    for _ in range(200):
        candidates = [
            node(
                f"n{i}",
                rng.uniform(0, 400),
                {s: rng.choice((0, 1, 3)) for s in "ABC"},
                node_type=NodeType.STORE if i % 2 else NodeType.WAREHOUSE,
                can_pickup=bool(i % 2),
            )
            for i in range(12)
        ]
        cart = lines(*[(s, rng.choice((1, 2))) for s in rng.sample("ABC", rng.choice((1, 2)))])
        relevant = relevant_candidates(cart, HOME, candidates)

        full = check_cart(cart, HOME, candidates, now)
        pruned = check_cart(cart, HOME, relevant, now, shippable_totals(candidates))

        assert pruned == full
