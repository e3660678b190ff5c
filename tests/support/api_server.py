"""The API alone over real HTTP on a fresh real database (SQLite or a PostgreSQL schema of its
own), without Temporal: for tests of what the API refuses before any workflow is involved."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from api.app import create_app
from config import Settings
from ledger.db import create_schema, make_engine, transaction
from security.keys import IssuedKey, issue_key
from security.roles import Role
from stack.servers import ServerThread


@dataclass
class ApiServer:
    url: str
    engine: Engine
    ops: IssuedKey
    admin: IssuedKey

    def headers(self, key: IssuedKey) -> dict[str, str]:
        return {"authorization": f"Bearer {key.key}"}


@contextmanager
def api_server(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str | None = None,
    **settings: object,
) -> Iterator[ApiServer]:
    """`database` is "sqlite" or "postgres" (then `postgres_url` is the server's)."""
    admin_engine: Engine | None = None
    schema = f"t_{uuid.uuid4().hex[:10]}"
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'api.db'}"
    else:
        assert postgres_url is not None
        url = postgres_url
        admin_engine = make_engine(url)
        with admin_engine.begin() as connection:
            connection.execute(text(f"create schema {schema}"))
        # The app's own engine (create_app) reads PGOPTIONS: it works in this schema too.
        monkeypatch.setenv("PGOPTIONS", f"-c search_path={schema}")
    engine = make_engine(url)
    create_schema(engine)
    with transaction(engine) as session:
        ops = issue_key(session, "ops", Role.OPS)
        admin = issue_key(session, "admin", Role.ADMIN)
    server = ServerThread(create_app(Settings(database_url=url, **settings))).start()  # type: ignore[arg-type]
    try:
        yield ApiServer(server.url, engine, ops, admin)
    finally:
        server.stop()
        engine.dispose()
        if admin_engine is not None:
            with admin_engine.begin() as connection:
                connection.execute(text(f"drop schema {schema} cascade"))
            admin_engine.dispose()
