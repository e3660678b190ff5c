"""The FastAPI application: `uvicorn api.app:app` or `create_app(settings)` in tests."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.checkout_fast_path import CheckoutFastPath
from api.errors import ApiError, install_error_handlers
from api.gate import ApiGate
from api.input_guard import NulGuard
from api.rate_limit import RateLimits
from api.routes import (
    availability,
    callbacks,
    catalogue,
    clients,
    configuration,
    feeds,
    incoming,
    network,
    network_files,
    orders,
    promise,
)
from api.security import KeyCache, install_http_hardening
from config import Settings, load_settings
from ledger.availability_cache import AvailabilityCache
from ledger.db import make_engine, prepare_schema
from ledger.group_commit import GroupCommit
from security.keys import remember_signature


class LazyTemporalClient:
    """Connects on first use, so stock and checkout endpoints serve while Temporal is down."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await Client.connect(
                        self._settings.temporal_address,
                        namespace=self._settings.temporal_namespace,
                        data_converter=pydantic_data_converter,
                    )
                except RuntimeError as exc:
                    raise ApiError(
                        503, "orchestrator_unavailable", f"Temporal unreachable: {exc}"
                    ) from exc
            return self._client


def _freeze_heap() -> None:
    """Once the availability cache has loaded, the objects alive (modules, the app, the cache:
    a large network makes hundreds of thousands) stay alive for the process's life. Frozen, the
    collector's full passes no longer traverse them: with them, a full pass stalled every
    request in flight, which set the checkout's p99 (benchmarks/README.md). Only reference
    cycles among these objects that die later escape collection; the cache replaces its arrays
    and views without cycles."""
    gc.collect()  # the load's garbage goes now, not into the frozen set
    gc.freeze()


def create_app(settings: Settings | None = None, *, checkout_fast_path: bool = True) -> FastAPI:
    """`checkout_fast_path=False` leaves every checkout check to the FastAPI route (tests compare
    the two)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        # Production (OPENDOM_MODE=production) only checks: its migration job ran `opendom db
        # upgrade` first; an unmigrated or newer database stops the start, naming what to run.
        prepare_schema(engine, migrate=settings.migrates_at_start)
        app.state.engine = engine
        app.state.settings = settings
        app.state.temporal = LazyTemporalClient(settings)
        app.state.key_cache = KeyCache()
        app.state.signatures = GroupCommit(engine, remember_signature)
        app.state.availability_cache = AvailabilityCache(engine, on_loaded=_freeze_heap)
        app.state.availability_cache.start()
        yield
        app.state.availability_cache.stop()
        engine.dispose()

    app = FastAPI(
        title="OpenDOM",
        version="0.1.0",
        description="Distributed order management: intake, support actions and node callbacks.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Added innermost first. A request meets, in order: HttpHardening (body limit, security
    # headers), ApiGate (key and rate limit, before the body is read), NulGuard (reads the
    # body), then the checkout fast path and the app: every answer is hardened, and nothing
    # unauthenticated or over its rate costs a body read.
    if checkout_fast_path:
        app.add_middleware(CheckoutFastPath)
    app.add_middleware(NulGuard)
    app.add_middleware(ApiGate, limits=RateLimits.from_settings(settings))
    install_http_hardening(app, settings.max_body_bytes)
    app.include_router(orders.router)
    app.include_router(callbacks.router)
    app.include_router(network.router)
    app.include_router(availability.router)
    app.include_router(feeds.router)
    app.include_router(incoming.router)
    app.include_router(configuration.router)
    app.include_router(catalogue.router)
    app.include_router(clients.router)
    app.include_router(network_files.router)
    app.include_router(promise.router)

    @app.get("/healthz", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def ready() -> JSONResponse:
        """Ready once the availability cache has loaded (large networks take seconds)."""
        loaded = app.state.availability_cache.ready
        return JSONResponse({"availability_cache": loaded}, status_code=200 if loaded else 503)

    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn api.app:app` builds the app on first access, not at import time.
    if name == "app":
        return create_app()
    raise AttributeError(name)
