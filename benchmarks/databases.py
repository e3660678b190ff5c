"""The benchmarks' PostgreSQL: the development machine's server, one fresh schema per benchmark."""

import os

from sqlalchemy import text

from ledger.db import make_engine

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def fresh_postgres_schema(schema: str) -> None:
    """Drop and recreate `schema`, and point every later connection of this process and of the
    processes it starts at it (through PGOPTIONS, which children inherit)."""
    os.environ["PGOPTIONS"] = f"-c search_path={schema}"
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f"drop schema if exists {schema} cascade"))
        connection.execute(text(f"create schema {schema}"))
    engine.dispose()
