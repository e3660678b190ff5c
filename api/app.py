"""The FastAPI application: `uvicorn api.app:app` or `create_app(settings)` in tests."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.errors import install_error_handlers
from api.routes import availability, callbacks, feeds, network, orders
from ledger.db import create_schema, make_engine
from stack.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        create_schema(engine)
        app.state.engine = engine
        app.state.settings = settings
        app.state.temporal = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
        )
        yield
        engine.dispose()

    app = FastAPI(
        title="OpenDOM",
        version="0.1.0",
        description="Distributed order management: intake, support actions and node callbacks.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(orders.router)
    app.include_router(callbacks.router)
    app.include_router(network.router)
    app.include_router(availability.router)
    app.include_router(feeds.router)

    @app.get("/healthz", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn api.app:app` builds the app on first access, not at import time.
    if name == "app":
        return create_app()
    raise AttributeError(name)
