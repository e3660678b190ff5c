"""Each API key has a rate (a token bucket per key in each API process): over it, a 429 that
says which limit, with Retry-After; other keys go on; the body size limit is a setting and
refuses before anything is parsed."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.db import transaction
from security.keys import issue_key
from security.roles import Role
from tests.support.api_server import ApiServer, api_server

BURST = 3


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    with api_server(
        "sqlite",
        tmp_path,
        monkeypatch,
        rate_limit_per_second=1,
        rate_limit_burst=BURST,
        traffic_rate_limit_per_second=2,
        traffic_rate_limit_burst=BURST + 2,
        max_body_bytes=4096,
    ) as server:
        yield server


def test_a_key_over_its_rate_gets_429_with_retry_after_and_the_limit(api: ApiServer) -> None:
    with httpx.Client(base_url=api.url, headers=api.headers(api.ops), timeout=30) as ops:
        answers = [ops.get("/v1/nodes") for _ in range(BURST + 1)]
    assert [a.status_code for a in answers] == [200] * BURST + [429]
    refused = answers[-1]
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "rate_limited"
    assert refused.json()["limit_per_second"] == 1 and refused.json()["burst"] == BURST
    assert "1 requests a second (bursts of 3)" in refused.json()["message"]
    assert refused.headers["x-content-type-options"] == "nosniff"  # hardened like any answer


def test_a_key_over_its_rate_does_not_slow_another_key(api: ApiServer) -> None:
    with (
        httpx.Client(base_url=api.url, headers=api.headers(api.ops), timeout=30) as ops,
        httpx.Client(base_url=api.url, headers=api.headers(api.admin), timeout=30) as admin,
    ):
        for _ in range(BURST + 1):
            ops.get("/v1/nodes")
        assert ops.get("/v1/nodes").status_code == 429
        assert admin.get("/v1/nodes").status_code == 200


def test_a_refused_key_is_let_through_again_after_retry_after(api: ApiServer) -> None:
    with httpx.Client(base_url=api.url, headers=api.headers(api.ops), timeout=30) as ops:
        for _ in range(BURST):
            ops.get("/v1/nodes")
        refused = ops.get("/v1/nodes")
        assert refused.status_code == 429
        time.sleep(float(refused.headers["retry-after"]))
        assert ops.get("/v1/nodes").status_code == 200


def test_channel_keys_have_the_traffic_limit(api: ApiServer) -> None:
    with transaction(api.engine) as session:
        web = issue_key(session, "web shop", Role.CHANNEL, channel="web")
    with httpx.Client(base_url=api.url, headers=api.headers(web), timeout=30) as shop:
        answers = [shop.get("/v1/availability/events") for _ in range(BURST + 3)]
    assert [a.status_code for a in answers] == [200] * (BURST + 2) + [429]
    assert answers[-1].json()["limit_per_second"] == 2


def test_a_rate_limited_request_is_refused_before_its_body_is_read(api: ApiServer) -> None:
    with httpx.Client(base_url=api.url, headers=api.headers(api.ops), timeout=30) as ops:
        for _ in range(BURST):
            ops.get("/v1/nodes")
        refused = ops.post("/v1/feeds/erp/deltas", content=b"{not json")
    assert refused.status_code == 429, refused.text


def test_the_body_limit_is_a_setting_and_named_in_the_413(api: ApiServer) -> None:
    with httpx.Client(base_url=api.url, headers=api.headers(api.admin), timeout=30) as admin:
        refused = admin.post("/v1/feeds/erp/deltas", content=b" " * 5000)
    assert refused.status_code == 413
    assert refused.json()["limit_bytes"] == 4096
    assert "4096 bytes" in refused.json()["message"]
