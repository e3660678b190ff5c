"""Alembic's environment: runs on the connection ledger.migrations hands it (create_schema, under
its lock), or on `sqlalchemy.url` for the `new` helper's scratch database."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import ledger.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as own:
        _run(own)
    engine.dispose()
