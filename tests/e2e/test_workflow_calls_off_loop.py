"""When Temporal answers NOT_FOUND, the API asks the read model whether the order closed or never
existed: off the event loop, so a slow read model stalls that request only (audit M10, the
rest). PostgreSQL: a lock on the read model's table makes the read wait as long as we like."""

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, text

from api.app import create_app
from config import Settings
from ledger.db import create_schema, make_engine, transaction
from security.keys import issue_key
from security.roles import Role
from stack.servers import ServerThread

pytestmark = pytest.mark.postgres
LOCK_SECONDS = 3.0
HEALTH_BOUND_SECONDS = 1.0


@pytest.fixture
def schema_engine(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
    # The app's own engine (create_app) reads PGOPTIONS: it works in this schema too.
    monkeypatch.setenv("PGOPTIONS", f"-c search_path={schema}")
    engine = make_engine(postgres_url)
    create_schema(engine)
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"drop schema {schema} cascade"))
    admin.dispose()


def _hold_read_model_lock(
    engine: Engine, locked: threading.Event, release: threading.Event
) -> None:
    with engine.connect() as connection, connection.begin():
        connection.execute(text("lock table orderview in access exclusive mode"))
        locked.set()
        release.wait(30)


async def test_healthz_answers_while_a_closed_or_unknown_check_waits_on_the_read_model(
    postgres_url: str, schema_engine: Engine, temporal_env
) -> None:
    with transaction(schema_engine) as session:
        support = issue_key(session, "loop-test", Role.SUPPORT)
    settings = Settings(
        database_url=postgres_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
    )
    server = ServerThread(create_app(settings, checkout_fast_path=False)).start()
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(
        target=_hold_read_model_lock, args=(schema_engine, locked, release), daemon=True
    )
    headers = {"authorization": f"Bearer {support.key}"}
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
            warm = await http.get("/v1/orders/order-web-warm")  # the key, cached; Temporal too
            assert warm.status_code == 404, warm.text
            first = await http.post("/v1/orders/order-web-warm/cancel", json={"reason": "x"})
            assert first.status_code == 404, first.text
            holder.start()
            assert locked.wait(10)
            cancel = asyncio.create_task(
                http.post("/v1/orders/order-web-never/cancel", json={"reason": "x"})
            )
            await asyncio.sleep(0.5)  # Temporal has answered NOT_FOUND; the read model waits
            health_times: list[float] = []
            loop = asyncio.get_running_loop()
            until = loop.time() + LOCK_SECONDS
            while loop.time() < until:
                began = loop.time()
                with contextlib.suppress(httpx.ReadTimeout):
                    await http.get("/healthz", timeout=HEALTH_BOUND_SECONDS * 2)
                health_times.append(loop.time() - began)
                await asyncio.sleep(0.1)
            assert not cancel.done(), "the cancel did not wait on the read model"
            release.set()
            answered = await cancel
        assert answered.status_code == 404, answered.text
        assert max(health_times) < HEALTH_BOUND_SECONDS, sorted(health_times)[-3:]
    finally:
        release.set()
        if holder.is_alive():
            holder.join(10)
        server.stop()
