"""A node's system URL: stored for real systems, derived for the embedded simulators."""

from connectors.node_systems import node_system_url


def test_a_simulator_node_is_reached_under_the_simulators_url_whatever_its_port() -> None:
    url = node_system_url("EU-DC-LYON", "simulator", "", "http://127.0.0.1:49152/")
    assert url == "http://127.0.0.1:49152/nodes/EU-DC-LYON"


def test_an_http_node_is_reached_at_its_stored_url_not_the_simulators() -> None:
    stored = "https://wms.example.com/opendom"
    assert node_system_url("WH-RENO", "opendom-http", stored, "http://127.0.0.1:8100") == stored


def test_a_node_id_with_a_slash_stays_one_path_segment() -> None:
    url = node_system_url("EU/ST-1", "simulator", "", "http://sim")
    assert url == "http://sim/nodes/EU%2FST-1"
