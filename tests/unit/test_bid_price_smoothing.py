"""sourcing.bid_prices.smoothed_bid_prices: what a refresh stores from the prices in force and the
new LP's."""

import pytest

from sourcing.bid_prices import smoothed_bid_prices

A, B, C = ("WH-A", "TEE"), ("WH-B", "TEE"), ("WH-C", "CAP")


def test_the_first_refresh_stores_the_lps_prices_as_they_are() -> None:
    assert smoothed_bid_prices({}, {A: 4.0}, 0.5) == {A: 4.0}


def test_a_price_is_the_weighted_average_and_a_missing_side_counts_as_zero() -> None:
    blended = smoothed_bid_prices({A: 4.0, B: 2.0}, {A: 8.0, C: 6.0}, 0.25)

    assert blended == pytest.approx({A: 7.0, B: 0.5, C: 4.5})


def test_a_passed_scarcity_fades_out_and_is_dropped_once_below_the_floor() -> None:
    prices = {A: 1.0}
    for _ in range(40):
        prices = smoothed_bid_prices(prices, {}, 0.5)

    assert prices == {}


def test_no_smoothing_is_the_lps_prices_and_a_weight_of_one_or_more_is_refused() -> None:
    assert smoothed_bid_prices({A: 4.0}, {B: 1.0}, 0.0) == {B: 1.0}
    with pytest.raises(ValueError, match="smoothing"):
        smoothed_bid_prices({A: 4.0}, {B: 1.0}, 1.0)
