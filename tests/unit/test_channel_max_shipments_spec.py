"""A channel's maximum shipments per order as configured: a count from 1 to 50 or none (no
limit), in a spec, a network file's CSV cell and JSON field alike, and the ruleset it plans under."""

import io

import pytest
from pydantic import ValidationError

from domain.configuration import ChannelSpec
from domain.network_files import Kind, parse_file, write_csv, write_json
from sourcing.model import SourcingOrder
from sourcing.rules import ruleset_with_max_shipments, shipment_limit

HEADER = "channel,name,channel_type,max_shipments_per_order\n"


def test_a_channel_limits_its_orders_to_between_one_and_fifty_shipments_or_none() -> None:
    assert (
        ChannelSpec(channel="web", name="Web", channel_type="dtc").max_shipments_per_order is None
    )
    for limit in (1, 50):
        spec = ChannelSpec(channel="b2b", name="B2B", channel_type="b2b",
                           max_shipments_per_order=limit)  # fmt: skip
        assert spec.max_shipments_per_order == limit
    for limit in (0, 51):
        with pytest.raises(ValidationError, match="max_shipments_per_order"):
            ChannelSpec(channel="b2b", name="B2B", channel_type="b2b",
                        max_shipments_per_order=limit)  # fmt: skip


def test_a_csv_cell_sets_the_limit_an_empty_one_none_and_a_bad_one_is_named() -> None:
    text = HEADER + "b2b,B2B,b2b,2\nweb,Web,dtc,\nbad,Bad,dtc,0\n"

    parsed = parse_file("channels.csv", io.StringIO(text))

    assert [s.max_shipments_per_order for s in parsed.specs] == [2, None]
    assert [str(r) for r in parsed.refused] == [
        "channels.csv:4: max_shipments_per_order: must be at least 1, not 0"
    ]


def test_written_limits_read_back_the_same_in_csv_and_json() -> None:
    specs = parse_file("channels.csv", io.StringIO(HEADER + "b2b,B2B,b2b,2\nweb,Web,dtc,\n")).specs
    for fmt in ("csv", "json"):
        out = io.StringIO()
        write_csv(Kind.CHANNELS, specs, out) if fmt == "csv" else write_json(specs, out)
        again = parse_file(f"channels.{fmt}", io.StringIO(out.getvalue()))
        assert again.refused == [] and again.specs == specs


def test_a_limited_channels_ruleset_allows_any_node_within_the_limit() -> None:
    assert ruleset_with_max_shipments(None) is None  # the default ruleset
    ruleset = ruleset_with_max_shipments(2)
    assert ruleset is not None and len(ruleset.rules) == 1
    (rule,) = ruleset.rules
    assert rule.node_types is None and rule.node_ids is None and rule.max_distance_km is None
    unlimited = SourcingOrder.model_construct(allow_split=True, max_splits=None)
    stricter = SourcingOrder.model_construct(allow_split=True, max_splits=1)
    assert shipment_limit(unlimited, rule) == 2
    assert shipment_limit(stricter, rule) == 1  # the order's own limit still applies
