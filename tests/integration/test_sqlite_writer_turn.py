"""The SQLite process lock (ledger.db's writer turn) on a real SQLite file: a writer cancelled
just as it got its turn (Temporal raises into a sync activity's thread at any point) gives the
turn back, and group commit fails a batch at once when no turn comes, not item by item."""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger import db
from ledger.db import WriterBusy, create_schema, make_engine, transaction
from ledger.group_commit import GroupCommit
from ledger.tables import CallbackSignature
from security.keys import remember_signature

BUSY_SECONDS = 0.5  # the turn's wait, shortened so a stuck turn shows in seconds
ITEMS = 8


class Cancelled(BaseException):
    """What Temporal raises into a cancelled activity's thread."""


class CountedTurns:
    """The engine's real writer lock; counts the turns asked for and, when armed, raises right
    after a turn was granted, as a cancellation landing just after `acquire` returned would."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.asked = 0
        self.cancel_next = False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.asked += 1
        granted = self._lock.acquire(blocking, timeout)
        if granted and self.cancel_next:
            self.cancel_next = False
            raise Cancelled()
        return granted

    def __getattr__(self, name: str) -> object:
        return getattr(self._lock, name)


@pytest.fixture
def sqlite_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", BUSY_SECONDS)
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def turns(sqlite_engine: Engine) -> CountedTurns:
    counted = CountedTurns(db._SQLITE_WRITERS[sqlite_engine])
    db._SQLITE_WRITERS[sqlite_engine] = counted  # type: ignore[assignment]
    return counted


def write_from_another_thread(engine: Engine, signature: str) -> None:
    def write() -> None:
        with transaction(engine) as session:
            remember_signature(session, signature)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(write).result()


def stored(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(CallbackSignature.signature)).all())


def test_a_writer_cancelled_as_it_gets_its_turn_gives_the_turn_back(
    sqlite_engine: Engine, turns: CountedTurns
) -> None:
    turns.cancel_next = True
    with pytest.raises(Cancelled), transaction(sqlite_engine) as session:
        remember_signature(session, "never")

    write_from_another_thread(sqlite_engine, "next")

    assert stored(sqlite_engine) == {"next"}


def test_group_commit_fails_a_batch_at_once_when_no_writer_turn_comes(
    sqlite_engine: Engine, turns: CountedTurns
) -> None:
    group: GroupCommit[str, bool] = GroupCommit(sqlite_engine, remember_signature)
    holding, done = threading.Event(), threading.Event()

    def hold_the_turn() -> None:
        with transaction(sqlite_engine):
            holding.set()
            done.wait()

    def caller(signature: str) -> str:
        try:
            group.submit(signature)
            return "ok"
        except WriterBusy:
            return "busy"

    holder = threading.Thread(target=hold_the_turn)
    holder.start()
    holding.wait()
    asked_before = turns.asked
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(ITEMS) as pool:
            outcomes = list(pool.map(caller, [f"sig-{i}" for i in range(ITEMS)]))
    finally:
        done.set()
        holder.join()
    elapsed = time.monotonic() - started

    assert outcomes == ["busy"] * ITEMS
    # One turn asked per batch (the first caller may be alone in one), not one per item.
    assert turns.asked - asked_before <= 3
    assert elapsed < 3 * BUSY_SECONDS + 1
    assert group.submit("after") is True  # the writer runs on once the turn is free
    assert stored(sqlite_engine) == {"after"}
