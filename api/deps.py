"""Request dependencies: the database (a session, or the engine for routes whose service opens its
own transactions) and the Temporal client, all built at start-up."""

from collections.abc import Callable, Iterator
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from config import Settings

P = ParamSpec("P")
T = TypeVar("T")


async def _engine(request: Request) -> Engine:
    # async: a plain lookup, not worth a trip to the thread pool (FastAPI runs sync
    # dependencies there)
    return request.app.state.engine


def _session(request: Request) -> Iterator[Session]:
    engine: Engine = request.app.state.engine
    with Session(engine, expire_on_commit=False) as session:
        yield session


async def _temporal(request: Request) -> Client:
    return await request.app.state.temporal.get()


def _settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[Engine, Depends(_engine)]
SessionDep = Annotated[Session, Depends(_session)]
TemporalDep = Annotated[Client, Depends(_temporal)]
SettingsDep = Annotated[Settings, Depends(_settings)]


def release_connection(session: Session) -> None:
    """Give the pooled connection back before waiting on Temporal: requests awaiting a slow or
    restarting engine must not drain the pool that the rest of the API needs. The session
    takes a connection again if it is used afterwards."""
    session.close()


async def off_loop(
    session: Session, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`work(session, ...)` in the thread pool, then the connection back to the pool there too.
    On the event loop, a pool checkout, a query or the rollback that returns a connection would
    stall every request of the process; and whatever the route awaits next (Temporal), it
    awaits holding no connection, as release_connection promises."""

    def run() -> T:
        try:
            return work(session, *args, **kwargs)
        finally:
            release_connection(session)

    return await run_in_threadpool(run)
