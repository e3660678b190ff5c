"""A channel's checkout holds of one SKU are limited (audit L5): on real SQLite and PostgreSQL at
the ledger, and through the real checkout route over HTTP."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from config import load_settings
from ledger import holds
from ledger.db import create_schema, make_engine, transaction
from security.keys import issue_key
from security.roles import Role
from tests.support.ledger_fixtures import position, seed

LIMIT = holds.HoldLimit(share=0.5, units=10)


def _hold(engine: Engine, hold_id: str, channel: str, quantity: int) -> None:
    with transaction(engine) as session:
        line = holds.HoldRequestLine(1, "WH-A", "TEE", quantity)
        expires = datetime.now(UTC) + timedelta(hours=24)
        holds.place_hold(session, hold_id, channel, [line], expires, LIMIT)


def test_a_channels_holds_of_a_sku_stop_at_its_share_of_the_sellable_stock(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 100})
    _hold(ledger_engine, "H-1", "web", 30)
    _hold(ledger_engine, "H-2", "web", 20)  # 50 of 100: the limit

    with pytest.raises(holds.HoldLimitExceeded, match="limited to 50 units") as refused:
        _hold(ledger_engine, "H-3", "web", 1)

    assert (refused.value.channel, refused.value.sku, refused.value.held) == ("web", "TEE", 51)
    assert position(ledger_engine, "WH-A") == (100, 0, 50)  # the refused hold took nothing
    _hold(ledger_engine, "H-4", "market", 40)  # another channel has its own limit
    with transaction(ledger_engine) as session:
        holds.release_hold(session, "H-1")
    _hold(ledger_engine, "H-5", "web", 30)  # a released hold frees the channel's allowance


def test_one_shopper_may_still_hold_the_last_units_of_a_small_stock(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 3})

    _hold(ledger_engine, "H-1", "web", 3)

    assert position(ledger_engine, "WH-A") == (3, 0, 3)


def test_the_settings_default_to_the_ledgers_hold_limit() -> None:
    settings = load_settings()
    default = holds.HoldLimit()
    assert (settings.max_held_share_per_channel, settings.held_units_always_allowed) == (
        default.share,
        default.units,
    )


@pytest.fixture
def web_shop(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    url = f"sqlite:///{tmp_path / 'holds.db'}"
    engine = make_engine(url)
    create_schema(engine)
    seed(engine, {"WH-A": 100})
    with transaction(engine) as session:
        key = issue_key(session, "web", Role.CHANNEL, channel="web").key
    engine.dispose()
    app = create_app(load_settings(database_url=url, temporal_address="127.0.0.1:1"))
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(500):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        yield client, key


def test_the_checkout_route_refuses_a_hold_beyond_the_limit_with_a_409_naming_it(
    web_shop: tuple[TestClient, str],
) -> None:
    client, key = web_shop

    def hold(quantity: int):  # type: ignore[no-untyped-def]
        cart = {
            "channel": "web",
            "destination": {"lat": 0, "lon": 0},
            "lines": [{"line_no": 1, "sku": "TEE", "quantity": quantity}],
            "hold": True,
            "hold_ttl_seconds": 86_400,
        }
        return client.post(
            "/v1/checkout/check", json=cart, headers={"Authorization": f"Bearer {key}"}
        )

    first, beyond = hold(50), hold(1)

    assert first.status_code == 200, first.text
    assert first.json()["hold"]["hold_id"]
    assert beyond.status_code == 409, beyond.text
    assert beyond.json()["error"] == "hold_limit_exceeded"
    assert "channel web would hold 51 x TEE" in beyond.json()["message"]
    assert "limited to 50 units" in beyond.json()["message"]
