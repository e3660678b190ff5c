"""Hostile input a key holder can send is refused with a 4xx that names the problem, before
the database sees it, never a 500: over-long or odd path parameters, and NUL bytes anywhere
(PostgreSQL refuses NUL in text and over-long values, SQLite stores them)."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api_server import ApiServer, api_server
from tests.support.ledger_fixtures import seed

# A real node and SKU: the refusals must come before the writes that would reach the database.
DELTA = {
    "event_id": "E-1",
    "node_id": "N",
    "sku": "TEE",
    "delta": 1,
    "as_of": "2026-11-25T09:00:00Z",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApiServer]:
    postgres_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    with api_server(request.param, tmp_path, monkeypatch, postgres_url) as server:
        seed(server.engine, {"N": 10})
        yield server


def _ops(api: ApiServer) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers=api.headers(api.ops), timeout=30)


def test_an_over_long_feed_source_is_refused_with_422(api: ApiServer) -> None:
    with _ops(api) as http:
        answer = http.post(f"/v1/feeds/{'s' * 65}/deltas", json={"deltas": [DELTA]})
    assert answer.status_code == 422, answer.text
    assert "source" in answer.json()["message"]


def test_a_feed_source_outside_the_identifier_charset_is_refused_with_422(api: ApiServer) -> None:
    with _ops(api) as http:
        answer = http.post("/v1/feeds/%E2%98%83 erp/deltas", json={"deltas": [DELTA]})
    assert answer.status_code == 422, answer.text
    assert "source" in answer.json()["message"]


def test_an_over_long_channel_pool_path_is_refused_with_422(api: ApiServer) -> None:
    with _ops(api) as http:
        answer = http.put(f"/v1/channels/{'c' * 41}/pool", json={"node_types": ["store"]})
    assert answer.status_code == 422, answer.text
    assert "channel" in answer.json()["message"]


def test_a_nul_byte_in_a_feed_event_id_is_refused_with_422(api: ApiServer) -> None:
    with _ops(api) as http:
        answer = http.post(
            "/v1/feeds/erp/deltas", json={"deltas": [{**DELTA, "event_id": "GR-\u00001"}]}
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "nul_byte"


def test_a_nul_byte_in_any_json_text_is_refused_with_422(api: ApiServer) -> None:
    with _ops(api) as http:
        # a dict key (the pool's node type), where no field validator looks
        answer = http.put("/v1/channels/web/pool", json={"share_by_node_type": {"st\u0000": 0.5}})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "nul_byte"


def test_a_nul_byte_in_a_path_or_query_is_refused_with_422(api: ApiServer) -> None:
    with _ops(api) as http:
        in_path = http.get("/v1/nodes/N%00X")
        in_query = http.get("/v1/availability", params={"sku": "a\u0000b"})
    assert in_path.status_code == 422 and in_path.json()["error"] == "nul_byte", in_path.text
    assert in_query.status_code == 422 and in_query.json()["error"] == "nul_byte", in_query.text


def test_a_raw_nul_byte_in_a_network_file_is_refused_with_422(api: ApiServer) -> None:
    with _ops(api) as http:
        answer = http.put(
            "/v1/network/files/nodes.csv",
            content=b"node_id,name\nN\x00,x\n",
            headers={"content-type": "text/csv"},
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "nul_byte"


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul_byte(api: ApiServer) -> None:
    """`\\\\u0000` in JSON is the six characters `\\u0000`, not NUL: refused or not, not for NUL."""
    with _ops(api) as http:
        answer = http.post(
            "/v1/feeds/erp/deltas", json={"deltas": [{**DELTA, "event_id": "GR-\\u0000"}]}
        )
    assert answer.json().get("error") != "nul_byte", answer.text
    assert answer.status_code < 500


def test_an_event_cursor_beyond_the_id_column_is_refused_with_422(api: ApiServer) -> None:
    """The event id is a 32-bit integer on PostgreSQL; `after` allowed up to 2**62 (a 500)."""
    with _ops(api) as http:
        beyond = http.get("/v1/availability/events", params={"after": 2**62})
        last = http.get("/v1/availability/events", params={"after": 2**31 - 1})
    assert beyond.status_code == 422, beyond.text
    assert "after" in beyond.json()["message"]
    assert last.status_code == 200, last.text
