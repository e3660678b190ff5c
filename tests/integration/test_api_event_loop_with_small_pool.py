"""The API's event loop is never blocked on the database: with a PostgreSQL pool of one
connection and 50 concurrent order listings of 500 documents queued on it, /healthz (which
touches nothing) still answers at once."""

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import create_engine

from api.app import create_app
from config import Settings
from domain.orders import Order, OrderState, OrderStatus
from ledger import orders_view
from ledger.db import create_schema, make_engine, normalise_url, transaction
from security.keys import IssuedKey, issue_key
from security.roles import Role
from stack.servers import ServerThread
from tests.support.network import CUSTOMER

pytestmark = pytest.mark.postgres
ORDERS = 500
LISTINGS = 50
HEALTH_BOUND_SECONDS = 1.0


def _tiny_pool(url: str, schema: str) -> Engine:
    """A real engine whose pool is one connection, so every listing queues on it."""
    return create_engine(
        normalise_url(url),
        pool_size=1,
        max_overflow=0,
        pool_timeout=120,
        connect_args={"options": f"-c timezone=utc -c search_path={schema}"},
    )


def _order_document(number: int) -> dict:
    order = Order(
        order_id=f"order-web-loop-{number}",
        channel="web",
        external_id=f"loop-{number}",
        order_type="dtc",
        priority=5,
        customer={"customer_id": "C-1", "email": "ada@example.com"},
        ship_to={
            "name": "Ada Lovelace",
            "line1": "1 Place Bellecour",
            "city": "Lyon",
            "postal_code": "69002",
            "country": "FR",
            "location": dict(CUSTOMER),
        },
        delivery_method="home",
        lines=[{"line_no": i, "sku": f"SKU-{i}", "quantity": 1} for i in range(1, 6)],
        submitted_at=datetime.now(UTC),
    )
    return OrderState(order=order, status=OrderStatus.COMPLETED, version=1).model_dump(mode="json")


@pytest.fixture
def schema_engine(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Engine]]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
    # The app's own engine (create_app) reads PGOPTIONS: it works in this schema too.
    monkeypatch.setenv("PGOPTIONS", f"-c search_path={schema}")
    engine = make_engine(postgres_url)
    create_schema(engine)
    yield schema, engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"drop schema {schema} cascade"))
    admin.dispose()


async def test_healthz_answers_while_listings_queue_on_a_pool_of_one(
    postgres_url: str, schema_engine: tuple[str, Engine]
) -> None:
    schema, engine = schema_engine
    with transaction(engine) as session:
        support: IssuedKey = issue_key(session, "loop-test", Role.SUPPORT)
        for number in range(ORDERS):
            orders_view.project(session, _order_document(number))
    app = create_app(Settings(database_url=postgres_url), checkout_fast_path=False)
    server = ServerThread(app).start()
    started_engine = app.state.engine
    app.state.engine = _tiny_pool(postgres_url, schema)
    listings: list[asyncio.Task[httpx.Response]] = []
    try:
        headers = {"authorization": f"Bearer {support.key}"}
        limits = httpx.Limits(max_connections=LISTINGS + 5)
        async with httpx.AsyncClient(
            base_url=server.url, headers=headers, timeout=120, limits=limits
        ) as http:
            warm = await http.get("/v1/orders", params={"limit": 1})  # the key, cached
            assert warm.status_code == 200, warm.text
            listings = [
                asyncio.create_task(http.get("/v1/orders", params={"limit": ORDERS}))
                for _ in range(LISTINGS)
            ]
            health_times: list[float] = []
            while not all(task.done() for task in listings):
                began = time.monotonic()
                assert (await http.get("/healthz")).status_code == 200
                health_times.append(time.monotonic() - began)
                await asyncio.sleep(0.05)
            responses = await asyncio.gather(*listings)
        listings = []
        assert all(r.status_code == 200 and len(r.json()) == ORDERS for r in responses)
        assert len(health_times) >= 3, "the listings finished before /healthz was measured"
        assert max(health_times) < HEALTH_BOUND_SECONDS, sorted(health_times)[-5:]
    finally:
        for task in listings:  # a failed bound leaves listings queued on a blocked loop
            task.cancel()
        server.stop()
        app.state.engine.dispose()
        started_engine.dispose()
