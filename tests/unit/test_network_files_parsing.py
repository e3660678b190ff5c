"""Reading network files into specs: every refused line named by file, line and field; the cell
shapes (lists, maps, transit bands); duplicate ids; and writing specs back."""

import io
from pathlib import Path

import pytest

from domain.configuration import CarrierServiceSpec, ChannelSpec, NodeSpec
from domain.network_files import Kind, parse_file, parse_stock, write_csv, write_json

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "network"


def _refused(name: str, text: str) -> list[str]:
    reader = parse_stock if name.startswith("stock") else parse_file
    return [str(r) for r in reader(name, io.StringIO(text)).refused]


NODES_HEADER = "node_id,name,node_type,lat,lon,connector_kind\n"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "nodes.csv",
            NODES_HEADER + "N1,One,warehouse,45,4,simulator\nN2,Two,shop,45,4,simulator\n",
            "nodes.csv:3: node_type: unknown node type 'shop'; "
            "one of warehouse, store, dc, 3pl, supplier",
        ),
        (
            "skus.csv",
            "sku,name,unit_price\nTEE,Tee,19\nCAP,Cap,-1\n",
            "skus.csv:3: unit_price: must be at least 0, not -1",
        ),
        (
            "channels.csv",
            "channel,name,channel_type\nweb,Web,dtc\nshop,Shop,retail\n",
            "channels.csv:3: channel_type: unknown order type 'retail'; "
            "one of dtc, b2b, marketplace, sales_rep",
        ),
        (
            "carriers.csv",
            "carrier,service,name,transit_bands\nDPD,classic,DPD,150:1\nDPD,x,DPD,150:one\n",
            "carriers.csv:3: transit_bands.days: 'one' is not a whole number",
        ),
        (
            "stock.csv",
            "node_id,sku,on_hand,safety_override\nN1,TEE,5,\nN1,CAP,many,\n",
            "stock.csv:3: on_hand: 'many' is not a whole number",
        ),
        (
            "nodes.json",
            '[{"node_id": "N1", "name": "One", "node_type": "warehouse", "lat": 45, "lon": 4,'
            ' "connector_kind": "simulator"},\n {"node_id": "N2", "name": "Two",'
            ' "node_type": "warehouse", "lat": 95, "lon": 4, "connector_kind": "simulator"}]',
            "nodes.json:[1]: lat: must be at most 90, not 95",
        ),
    ],
)
def test_a_bad_line_in_each_kind_of_file_is_named_by_file_line_and_field(
    name: str, text: str, expected: str
) -> None:
    assert _refused(name, text) == [expected]


def test_every_refused_line_is_named_not_only_the_first() -> None:
    text = NODES_HEADER + (
        "N1,One,warehouse,45,4,simulator\n"
        "N2,Two,shop,45,4,simulator\n"
        "N3,Three,store,x,4,simulator\n"
        "N4,,store,45,200,simulator\n"
    )
    assert _refused("nodes.csv", text) == [
        "nodes.csv:3: node_type: unknown node type 'shop'; "
        "one of warehouse, store, dc, 3pl, supplier",
        "nodes.csv:4: lat: 'x' is not a number",
        "nodes.csv:5: name: required",
        "nodes.csv:5: lon: must be at most 180, not 200",
    ]


def test_line_numbers_count_as_an_editor_does_across_quoted_newlines_and_blank_lines() -> None:
    text = NODES_HEADER + (
        'N1,"Two\nlines",warehouse,45,4,simulator\n\nN2,Two,warehouse,45,4,nowhere\n'
    )
    assert _refused("nodes.csv", text) == [
        "nodes.csv:5: connector_kind: unknown connector kind 'nowhere'; "
        "one of opendom-http, simulator"
    ]


def test_an_unknown_column_is_refused_naming_it_and_a_missing_required_one_too() -> None:
    refused = _refused("skus.csv", "sku,colour\nTEE,red\n")
    assert refused[0].startswith("skus.csv:1: unknown column 'colour'; the columns are sku, name")
    assert refused[1] == "skus.csv:1: missing column 'name' (required)"


def test_missing_optional_columns_and_empty_cells_take_the_fields_defaults() -> None:
    parsed = parse_file("nodes.csv", io.StringIO(NODES_HEADER + "N1,One,dc,45,4,simulator\n"))
    (node,) = parsed.specs
    assert isinstance(node, NodeSpec)
    assert (node.working_days, node.cutoff_time, node.safety_stock) == (
        [0, 1, 2, 3, 4],
        "14:00",
        None,
    )
    text = "sku,name,weight_kg,active\nTEE,Tee,,\n"
    (sku,) = parse_file("skus.csv", io.StringIO(text)).specs
    assert (sku.weight_kg, sku.active) == (None, True)


def test_list_map_band_and_boolean_cells() -> None:
    nodes = parse_file(
        "nodes.csv",
        io.StringIO(
            "node_id,name,node_type,lat,lon,connector_kind,working_days,holidays,can_pickup\n"
            "N1,One,store,45,4,simulator,0|1|2|3|4|5,2026-12-25|2027-01-01,yes\n"
        ),
    )
    (node,) = nodes.specs
    assert isinstance(node, NodeSpec)
    assert node.working_days == [0, 1, 2, 3, 4, 5]
    assert [d.isoformat() for d in node.holidays] == ["2026-12-25", "2027-01-01"]
    assert node.can_pickup is True
    channels = parse_file(
        "channels.csv",
        io.StringIO(
            "channel,name,channel_type,pool_node_types,pool_node_ids,share_by_node_type,"
            "cap_by_node_type\nweb,Web,dtc,warehouse|store,N1|N2,store=0.5,dc=40|store=2\n"
        ),
    )
    (channel,) = channels.specs
    assert isinstance(channel, ChannelSpec)
    assert channel.pool_node_types == ["warehouse", "store"]
    assert channel.pool_node_ids == ["N1", "N2"]
    assert channel.share_by_node_type == {"store": 0.5}
    assert channel.cap_by_node_type == {"dc": 40, "store": 2}
    carriers = parse_file(
        "carriers.csv",
        io.StringIO(
            "carrier,service,name,transit_bands\nDPD,classic,DPD,150:1|500:2|1000000000:5\n"
        ),
    )
    (carrier,) = carriers.specs
    assert isinstance(carrier, CarrierServiceSpec)
    assert [(b.max_km, b.days) for b in carrier.transit_bands] == [(150, 1), (500, 2), (1e9, 5)]


def test_cells_that_do_not_split_into_their_shape_are_refused() -> None:
    refused = _refused(
        "channels.csv",
        "channel,name,channel_type,share_by_node_type\nweb,Web,dtc,store\n",
    )
    assert refused == ["channels.csv:2: share_by_node_type: 'store' is not key=value"]
    refused = _refused("carriers.csv", "carrier,service,name,transit_bands\nDPD,c,DPD,150\n")
    assert refused == ["carriers.csv:2: transit_bands: '150' is not max_km:days"]


def test_a_duplicate_id_is_refused_naming_both_lines() -> None:
    text = "sku,name\nTEE,Tee\nCAP,Cap\nTEE,Tee again\n"
    assert _refused("skus.csv", text) == ["skus.csv:4: sku: 'TEE' is also on line 2"]
    stock = "node_id,sku,on_hand,safety_override\nN1,TEE,5,\nN2,TEE,1,\nN1,TEE,3,\n"
    rows = parse_stock("stock.csv", io.StringIO(stock))
    assert [str(r) for r in rows.refused] == [
        "stock.csv:4: node_id, sku: 'N1|TEE' is also on line 2"
    ]
    assert rows.on_hand.tolist() == [5, 1]  # the refused line is not among the rows kept
    carriers = "carrier,service,name,transit_bands\nDPD,c,DPD,150:1\nDPD,c,Again,150:1\n"
    assert _refused("carriers.csv", carriers) == [
        "carriers.csv:3: carrier, service: 'DPD|c' is also on line 2"
    ]


def test_json_rows_are_named_by_their_index_and_unknown_fields_refused() -> None:
    text = '[{"node_id": "N1", "sku": "TEE", "on_hand": 5},\n 7,\n {"node_id": "N1", "sku": "CAP", "on_hand": 1, "colour": "red"}]'
    assert _refused("stock.json", text) == [
        "stock.json:[1]: an object is expected",
        "stock.json:[2]: colour: unknown field",
    ]
    assert _refused("skus.json", '{"sku": "TEE"}') == [
        "skus.json: a JSON list of objects is expected"
    ]


def test_the_example_network_reads_without_a_refusal() -> None:
    for kind in ("carriers", "nodes", "skus", "channels"):
        with (EXAMPLES / f"{kind}.csv").open(encoding="utf-8-sig", newline="") as text:
            parsed = parse_file(f"{kind}.csv", text)
        assert parsed.refused == [] and parsed.specs, kind
    with (EXAMPLES / "stock.csv").open(encoding="utf-8-sig", newline="") as text:
        rows = parse_stock("stock.csv", text)
    assert rows.refused == [] and len(rows) > 100


def test_written_rows_read_back_as_the_same_specs() -> None:
    with (EXAMPLES / "channels.csv").open(encoding="utf-8", newline="") as text:
        channels = parse_file("channels.csv", text).specs
    with (EXAMPLES / "nodes.csv").open(encoding="utf-8", newline="") as text:
        nodes = parse_file("nodes.csv", text).specs
    for kind, specs in ((Kind.CHANNELS, channels), (Kind.NODES, nodes)):
        for write, fmt in ((write_csv, "csv"), (write_json, "json")):
            out = io.StringIO()
            write(kind, specs, out) if fmt == "csv" else write(specs, out)
            again = parse_file(f"{kind}.{fmt}", io.StringIO(out.getvalue()))
            assert again.refused == []
            assert again.specs == specs


def test_stock_rows_read_fast_give_what_pydantic_gives_and_refuse_the_same() -> None:
    # Rows 3 on repeat a node and SKU already accepted (the fast path); odd forms of counts
    # go to pydantic, which takes or refuses them as it would on a first row.
    text = (
        "node_id,sku,on_hand,safety_override\n"
        "N1,A,5,\n"
        "N1,B,007,2\n"
        "N2,A, 3 ,\n"
        "N2,B,+4,\n"
        "N3,A,\u0665,\n"
        "N3,B,-1,\n"
        "N4,A,1,x\n"
        "N4,B,1000000000000000000000,\n"
    )
    rows = parse_stock("stock.csv", io.StringIO(text))
    assert rows.on_hand.tolist() == [5, 7, 3, 4]
    assert rows.override.tolist() == [-1, 2, -1, -1]
    assert rows.place.tolist() == [2, 3, 4, 5]
    assert [str(r) for r in rows.refused] == [
        "stock.csv:6: on_hand: '\u0665' is not a whole number",
        "stock.csv:7: on_hand: must be at least 0, not -1",
        "stock.csv:8: safety_override: 'x' is not a whole number",
        "stock.csv:9: on_hand: more than 17 digits",
    ]


def test_an_infinite_number_is_refused_not_stored() -> None:
    # inf passes a `ge=0` check, then breaks every JSON answer and export that holds it.
    refused = _refused("skus.csv", "sku,name,unit_price\nA,Mug,inf\n")

    assert len(refused) == 1 and refused[0].startswith("skus.csv:2: unit_price: ")


def test_json_nested_too_deeply_is_a_refusal_not_a_crash() -> None:
    refused = _refused("nodes.json", "[" + "[" * 100_000 + "]" * 100_001)

    assert refused and refused[0].startswith("nodes.json:")
