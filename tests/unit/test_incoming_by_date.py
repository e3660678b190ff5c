"""Stock by date from incoming lines (domain.incoming): pure rules."""

from dataclasses import dataclass
from datetime import date

from domain.availability import ChannelPoolRule
from domain.incoming import IncomingUnits, available_on, first_day_available, incoming_by_date


@dataclass(frozen=True)
class Figure:
    node_id: str
    node_type: str
    sku: str
    expected_date: date
    units: int


FIGURES = [
    Figure("DC1", "warehouse", "TEE", date(2026, 12, 14), 40),
    Figure("ST1", "store", "TEE", date(2026, 12, 14), 5),
    Figure("DC1", "warehouse", "TEE", date(2026, 12, 10), 10),
    Figure("DC1", "warehouse", "CAP", date(2026, 12, 20), 3),
]


def test_incoming_is_summed_by_date_over_the_nodes_the_channel_sells_from() -> None:
    warehouses_only = ChannelPoolRule(channel="b2b", node_types=["warehouse"])

    assert incoming_by_date(FIGURES, warehouses_only)["TEE"] == [
        IncomingUnits(date=date(2026, 12, 10), units=10),
        IncomingUnits(date=date(2026, 12, 14), units=40),
    ]
    assert incoming_by_date(FIGURES, None)["TEE"][1].units == 45


def test_a_pool_share_does_not_cut_incoming_but_a_node_outside_the_pool_does() -> None:
    pool = ChannelPoolRule(channel="web", node_ids=["ST1"], share_by_node_type={"store": 0.1})

    assert incoming_by_date(FIGURES, pool) == {
        "TEE": [IncomingUnits(date=date(2026, 12, 14), units=5)]
    }


def test_available_on_a_date_adds_the_lines_expected_by_then() -> None:
    incoming = incoming_by_date(FIGURES, None)["TEE"]

    assert available_on(date(2026, 12, 9), 7, incoming) == 7
    assert available_on(date(2026, 12, 10), 7, incoming) == 17
    assert available_on(date(2026, 12, 14), 7, incoming) == 62
    assert available_on(date(2026, 12, 9), -3, incoming) == 0  # oversold now: nothing, not less


def test_the_first_day_a_quantity_is_available_is_the_date_of_the_line_that_completes_it() -> None:
    incoming = incoming_by_date(FIGURES, None)["TEE"]
    today = date(2026, 12, 1)

    assert first_day_available(5, today, 7, incoming) == today
    assert first_day_available(17, today, 7, incoming) == date(2026, 12, 10)
    assert first_day_available(18, today, 7, incoming) == date(2026, 12, 14)
    assert first_day_available(63, today, 7, incoming) is None
    late = [IncomingUnits(date=date(2026, 11, 20), units=10)]
    assert first_day_available(10, today, 0, late) == today  # a late line is still coming
