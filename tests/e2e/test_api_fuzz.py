"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis): whatever it
generates, the API answers without a 5xx, on SQLite and on PostgreSQL (which refuses NUL
bytes and over-long text where SQLite stores them).

Beyond the published schema, two augmented ones: the callbacks' signature and timestamp
headers (not declared in the document: the route reads them itself) as arbitrary strings, and
every path parameter over-long (65 to 300 characters: longer than any column)."""

import asyncio
import copy
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config import Settings
from ledger.db import create_schema, make_engine, transaction
from ledger.tables import ApiClient
from security.keys import issue_key
from security.roles import Role
from simulators.app import SimulatorConfig, create_simulator_app
from stack.servers import ServerThread, free_port
from tests.conftest import TEST_SLA_SCALE, Stack
from worker import order_worker

CASES_PER_OPERATION = 60  # x ~20 operations and both modes: well over 1,000 cases per run
HEADER_CASES = 200  # per callback operation
LONG_PATH_CASES = 15  # per operation with a path parameter
SEED = "20261125"
CALLBACK_HEADERS = ("x-opendom-signature", "x-opendom-timestamp")


def _schemathesis() -> str:
    cli = Path(sys.executable).parent / "schemathesis"
    if cli.exists():
        return str(cli)
    found = shutil.which("schemathesis")
    if found is None:
        pytest.fail("schemathesis is a dev dependency: install the project with '.[dev]'")
    return found


def _restore_stack_keys(stack: Stack) -> None:
    """Schemathesis follows the API's links: it lists the keys and revokes or rotates them.
    The stack's own keys are put back as they were, for the tests after this one (the
    simulators sign with the gateway's secret)."""
    with transaction(stack.engine) as session:
        for issued in (stack.admin, stack.gateway):
            client = session.get(ApiClient, issued.key_id)
            assert client is not None
            client.active, client.revoked_at = True, None
            client.signing_secret = issued.signing_secret


async def _fuzz(stack: Stack, schema: str, *args: str) -> str:
    """One schemathesis run with the admin key; returns its report, asserting no 5xx."""
    try:
        return await _run_schemathesis(stack, schema, *args)
    finally:
        _restore_stack_keys(stack)


async def _run_schemathesis(stack: Stack, schema: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        _schemathesis(),
        "run",
        schema,
        "--url", stack.api_url,
        "--checks", "not_a_server_error",
        "--seed", SEED,
        "--request-timeout", "30",
        "--generation-database", "none",
        "--generation-allow-x00", "true",
        "--header", f"Authorization: Bearer {stack.admin.key}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    report = output.decode(errors="replace")
    print(report[-3000:])
    assert process.returncode == 0, report[-6000:]
    return report


def _generated(report: str) -> int:
    return sum(int(n) for n in re.findall(r"(\d+) generated", report))


async def _document(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        return (await http.get("/openapi.json")).json()


def _write(tmp_path: Path, name: str, document: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def with_callback_headers(document: dict[str, Any]) -> dict[str, Any]:
    """The callbacks with their signature and timestamp headers declared as any string, and
    only them (the other operations are fuzzed by the plain run)."""
    augmented = copy.deepcopy(document)
    augmented["paths"] = {
        path: item for path, item in augmented["paths"].items() if "/callbacks/" in path
    }
    for item in augmented["paths"].values():
        for operation in item.values():
            operation.setdefault("parameters", []).extend(
                {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
                for name in CALLBACK_HEADERS
            )
    return augmented


def with_over_long_path_parameters(document: dict[str, Any]) -> dict[str, Any]:
    """Only the operations with a path parameter, each parameter 65 to 300 characters."""
    augmented = copy.deepcopy(document)
    paths: dict[str, Any] = {}
    for path, item in augmented["paths"].items():
        if "{" not in path:
            continue
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    parameter["schema"] = {"type": "string", "minLength": 65, "maxLength": 300}
        paths[path] = item
    augmented["paths"] = paths
    return augmented


@pytest_asyncio.fixture(scope="module")
async def postgres_stack(
    temporal_env: WorkflowEnvironment, postgres_url: str
) -> AsyncIterator[Stack]:
    """The `stack` fixture's stack on a PostgreSQL schema of its own."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin_engine = make_engine(postgres_url)
    with admin_engine.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
    # Every engine of this process (the API's, the worker's) reads PGOPTIONS: this schema.
    saved = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = f"-c search_path={schema}"
    engine = make_engine(postgres_url)
    create_schema(engine)
    with transaction(engine) as session:
        admin = issue_key(session, "tests", Role.ADMIN)
        gateway = issue_key(session, "simulators", Role.NODE)
    api_port = free_port()
    simulators = ServerThread(
        create_simulator_app(
            SimulatorConfig(
                api_url=f"http://127.0.0.1:{api_port}",
                latency_seconds=0.05,
                seed=7,
                api_key=gateway.key,
                signing_secret=gateway.signing_secret,
            )
        )
    ).start()
    settings = Settings(
        database_url=postgres_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        task_queue=f"orders-{uuid.uuid4().hex[:8]}",
        api_url=f"http://127.0.0.1:{api_port}",
        carrier_url=simulators.url,
        sla_scale=TEST_SLA_SCALE,
    )
    api = ServerThread(create_app(settings), port=api_port).start()
    headers = {"authorization": f"Bearer {admin.key}"}
    try:
        async with (
            order_worker(temporal_env.client, settings),
            httpx.AsyncClient(base_url=api.url, timeout=60, headers=headers) as http,
        ):
            yield Stack(
                settings, temporal_env.client, engine, api.url, simulators.url, http, admin, gateway
            )
    finally:
        api.stop()
        simulators.stop()
        engine.dispose()
        if saved is None:
            os.environ.pop("PGOPTIONS", None)
        else:
            os.environ["PGOPTIONS"] = saved
        with admin_engine.begin() as connection:
            connection.execute(text(f"drop schema {schema} cascade"))
        admin_engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzzed(request: pytest.FixtureRequest) -> Stack:
    return request.getfixturevalue("stack" if request.param == "sqlite" else "postgres_stack")


async def test_nul_bytes_in_every_text_are_refused_not_a_server_error(fuzzed: Stack) -> None:
    """A NUL in a path, a query or a JSON body, on every operation that takes one: a 422."""
    document = await _document(fuzzed)
    answers: list[tuple[str, str, int]] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            concrete = re.sub(r"\{[^}]+\}", "x%00y", path)
            if "{" not in path and not operation.get("parameters") and method == "get":
                continue
            if "{" in path:
                answer = await fuzzed.http.request(method, concrete, json={"a": "b"})
            elif "requestBody" in operation:
                answer = await fuzzed.http.request(method, path, json={"text": "a\u0000b"})
            else:
                answer = await fuzzed.http.request(method, path, params={"q": "a\u0000b"})
            answers.append((method, path, answer.status_code))
    refused = [a for a in answers if a[2] == 422]
    assert answers and refused == answers, [a for a in answers if a[2] != 422]


async def test_generated_requests_never_get_a_server_error(fuzzed: Stack) -> None:
    report = await _fuzz(
        fuzzed, f"{fuzzed.api_url}/openapi.json", "--max-examples", str(CASES_PER_OPERATION)
    )
    generated = _generated(report)
    assert generated >= 1000, f"only {generated} cases generated"


async def test_callback_signature_and_timestamp_headers_never_get_a_server_error(
    fuzzed: Stack, tmp_path: Path
) -> None:
    """Arbitrary header strings (latin-1, as HTTP carries them: '²' and '³' among them, which
    str.isdigit() accepts), signed by no one."""
    schema = _write(tmp_path, "callbacks.json", with_callback_headers(await _document(fuzzed)))
    report = await _fuzz(fuzzed, schema, "--max-examples", str(HEADER_CASES), "--mode", "positive")
    assert _generated(report) >= HEADER_CASES, report[-3000:]


async def test_over_long_path_parameters_never_get_a_server_error(
    fuzzed: Stack, tmp_path: Path
) -> None:
    document = with_over_long_path_parameters(await _document(fuzzed))
    schema = _write(tmp_path, "long-paths.json", document)
    report = await _fuzz(
        fuzzed, schema, "--max-examples", str(LONG_PATH_CASES), "--mode", "positive"
    )
    assert _generated(report) >= LONG_PATH_CASES * len(document["paths"]), report[-3000:]
