"""Group commit: many small writes from many threads share one transaction.

Each caller hands over its write and blocks until the transaction holding it has committed, so
a caller that returns has its write durable, exactly as with a transaction of its own. Whoever
finds no batch being written becomes the writer for everything queued so far; the others wait
for it. Under load a batch holds what arrived while the previous one was written, so the
database sees one BEGIN / COMMIT (and on SQLite one turn of its only write lock, one fsync)
per batch instead of per write. With a single caller it is a plain transaction.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from ledger.db import transaction

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Entry(Generic[T, R]):
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


@dataclass
class _Queue(Generic[T, R]):
    entries: list[_Entry[T, R]] = field(default_factory=list)
    writing: bool = False


class GroupCommit(Generic[T, R]):
    """`write(session, item)` is applied to each item in the shared transaction; it must not
    depend on another item of the batch. If a batch fails, its items are written again one
    transaction each, so one bad item fails only its own caller."""

    def __init__(
        self, engine: Engine, write: Callable[[Session, T], R], max_batch: int = 64
    ) -> None:
        self._engine = engine
        self._write = write
        self._max_batch = max_batch
        self._queue: _Queue[T, R] = _Queue()
        self._changed = threading.Condition()

    def submit(self, item: T) -> R:
        """Blocks until `item` is committed; returns what `write` returned for it."""
        entry: _Entry[T, R] = _Entry(item)
        with self._changed:
            self._queue.entries.append(entry)
        while True:
            with self._changed:
                while not entry.done and self._queue.writing:
                    self._changed.wait()
                if entry.done:
                    return _outcome(entry)
                # Not done and nobody writing: it is still queued, and this thread writes next.
                self._queue.writing = True
                batch = self._queue.entries[: self._max_batch]
                del self._queue.entries[: self._max_batch]
            try:
                self._commit(batch)
            finally:
                with self._changed:
                    self._queue.writing = False
                    self._changed.notify_all()

    def _commit(self, batch: list[_Entry[T, R]]) -> None:
        try:
            self._apply(batch)
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            for entry in batch:
                self._commit([entry])

    def _apply(self, batch: list[_Entry[T, R]]) -> None:
        with transaction(self._engine) as session:
            results = [self._write(session, entry.item) for entry in batch]
        for entry, result in zip(batch, results, strict=True):
            entry.result, entry.done = result, True


def _outcome(entry: _Entry[T, R]) -> R:
    if entry.error is not None:
        raise entry.error
    return entry.result  # type: ignore[return-value]
