"""Group commit: many small writes from many threads share one transaction.

Callers hand their write to one writer thread and block until the transaction holding it has
committed, so a caller that returns has its write durable, exactly as with a transaction of its
own. The writer takes everything queued so far into one transaction: under load a batch holds
what arrived while the previous one was written, so the database sees one BEGIN / COMMIT (and
on SQLite one turn of its only write lock, one fsync) per batch instead of per write.

The writer is a thread of its own, not one of the callers: Temporal cancels a sync activity by
raising an exception inside its thread, at any point, and a caller doing other callers' writes
could leave them half-done. A cancelled caller here only stops waiting.

A caller must not be inside `ledger.db.transaction` on the same engine: on SQLite the writer
needs the process's write lock that such a caller holds.
"""

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from ledger.db import WriterBusy, transaction

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Entry(Generic[T, R]):
    item: T
    finished: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """`write(session, item)` is applied to each item in a shared transaction; it must not
    depend on another item of the batch. When a batch fails because of an item (not the
    database), its items are written again one transaction each, so a bad item fails only its
    own caller; a database error, or no turn at SQLite's write lock (WriterBusy), fails the
    whole batch at once (the callers retry)."""

    def __init__(
        self, engine: Engine, write: Callable[[Session, T], R], max_batch: int = 64
    ) -> None:
        self._engine = engine
        self._write = write
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Entry[T, R]] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._starting = threading.Lock()

    def submit(self, item: T) -> R:
        """Blocks until `item` is committed; returns what `write` returned for it."""
        entry: _Entry[T, R] = _Entry(item)
        self._ensure_writer()
        self._queue.put(entry)
        entry.finished.wait()
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value]

    def _ensure_writer(self) -> None:
        if self._writer is None:
            with self._starting:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._run, name="group-commit", daemon=True
                    )
                    self._writer.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit(batch)
            except BaseException as exc:  # the writer must outlive anything a batch raises
                _finish(batch, exc)

    def _commit(self, batch: list[_Entry[T, R]]) -> None:
        try:
            self._apply(batch)
        except (DBAPIError, WriterBusy) as exc:
            # The database or its write lock, not an item: one at a time would fail alike, and
            # on a busy lock each of up to `max_batch` items would wait its full turn again.
            _finish(batch, exc)
        except Exception as exc:
            if len(batch) == 1:
                _finish(batch, exc)
                return
            for entry in batch:
                self._commit([entry])

    def _apply(self, batch: list[_Entry[T, R]]) -> None:
        with transaction(self._engine) as session:
            results = [self._write(session, entry.item) for entry in batch]
        for entry, result in zip(batch, results, strict=True):
            entry.result = result
            entry.finished.set()


def _finish(batch: list[_Entry[T, R]], error: BaseException) -> None:
    for entry in batch:
        if not entry.finished.is_set():
            entry.error = error
            entry.finished.set()
