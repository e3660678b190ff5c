"""OPENDOM_MODE=production: the API (a real uvicorn process) does not migrate. It refuses an
unmigrated database naming `opendom db upgrade`, starts once that has run, and refuses a
database a newer OpenDOM migrated; embedded mode migrates at start but refuses that one too."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from ledger.db import SchemaNewerThanCode, create_schema, make_engine, schema_revision
from stack.launcher import uvicorn_args
from stack.servers import free_port
from worker import order_worker

ROOT = Path(__file__).resolve().parents[2]


def _env(database_url: str, mode: str = "production") -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "OPENDOM_MODE": mode}


def _serve(database_url: str, mode: str = "production") -> tuple[int | None, str]:
    """Start the API; (None, "") once it answers /healthz (then stopped), or its exit code and
    log when it refused to start."""
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        uvicorn_args("api.app:create_app", url),
        env=_env(database_url, mode),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return None, ""
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API neither started nor refused"
            time.sleep(0.2)
        return process.returncode, process.stdout.read() if process.stdout else ""
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def _upgrade(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "db", "upgrade"],
        env=_env(database_url), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _stamp(database_url: str, revision: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("update alembic_version set version_num = :r"), {"r": revision})
    engine.dispose()


def test_the_api_refuses_an_unmigrated_database_until_opendom_db_upgrade_runs(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    code, log = _serve(url)
    assert code is not None and code != 0
    assert "opendom db upgrade" in log
    engine = make_engine(url)
    assert schema_revision(engine).current is None  # it wrote nothing
    engine.dispose()

    upgraded = _upgrade(url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert _serve(url) == (None, "")


@pytest.mark.parametrize("mode", ["production", "embedded"])
def test_the_api_refuses_a_database_migrated_by_a_newer_opendom(tmp_path: Path, mode: str) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert _upgrade(url).returncode == 0
    _stamp(url, "9999_from_the_future")
    code, log = _serve(url, mode)
    assert code is not None and code != 0
    assert "9999_from_the_future" in log and "newer" in log
    refused = _upgrade(url)  # the migration job will not touch it either
    assert refused.returncode == 1 and "newer" in refused.stderr


def test_create_schema_refuses_a_newer_database_and_leaves_it_as_it_was(ledger_engine) -> None:
    with ledger_engine.begin() as connection:
        connection.execute(text("update alembic_version set version_num = '9999_future'"))
    with pytest.raises(SchemaNewerThanCode) as refused:
        create_schema(ledger_engine)
    assert refused.value.current == "9999_future"
    assert schema_revision(ledger_engine).current == "9999_future"
    assert schema_revision(ledger_engine).newer_than_code


async def test_the_worker_in_production_mode_refuses_an_unmigrated_database(
    tmp_path: Path, temporal_env
) -> None:
    from config import load_settings
    from config.settings import Mode
    from ledger.db import SchemaNotMigrated

    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}", mode=Mode.PRODUCTION
    )
    with pytest.raises(SchemaNotMigrated, match="opendom db upgrade"):
        async with order_worker(temporal_env.client, settings):
            pass  # pragma: no cover
