"""Tailing the append-only stock movements by id without missing a late commit.

PostgreSQL hands out a movement's id at INSERT but shows the row only at COMMIT: while a long
transaction (a snapshot of 100k positions) is open, later ids are committed and readable, and
a reader that jumps to the highest id it saw never reads the long transaction's rows. So a tail
remembers the ids below its position it has not seen (gaps) and asks for them again on every
later pass, until they appear or `GAP_SECONDS` pass: a rolled-back transaction, or ids a
sequence skipped, leave gaps that never fill. SQLite has one writer and hands a rolled-back id
out again, so its tails never see a gap; the same code runs there.

Used by the threshold events (ledger.thresholds, the tail kept in its Watermark row) and the
availability cache (ledger.availability_cache, the tail kept in memory).
"""

import json
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select
from sqlmodel import Session, col

from ledger.tables import StockMovement

# How long an id may stay missing before it is taken for rolled back: longer than any write
# transaction is expected to stay open (the largest snapshot imports take about a minute).
GAP_SECONDS = 600.0
# Gaps (ranges of ids) asked for again at most; past it the oldest are given up. Each is one
# term of the query's OR, and SQLite refuses expressions nested 1000 deep.
MAX_GAPS = 200


@dataclass(frozen=True, slots=True)
class Gap:
    first: int
    last: int
    since: float  # when it was first missed, in seconds since the epoch


@dataclass(frozen=True, slots=True)
class Tail:
    """Every id up to `position` has been read, or is in `gaps`."""

    position: int = 0
    gaps: tuple[Gap, ...] = ()

    def gaps_text(self) -> str | None:
        """The gaps as a short text, for a row that keeps the tail (Watermark.cursor)."""
        if not self.gaps:
            return None
        return json.dumps([[g.first, g.last, g.since] for g in self.gaps])

    @classmethod
    def stored(cls, position: int, gaps_text: str | None) -> "Tail":
        gaps = tuple(Gap(int(a), int(b), float(t)) for a, b, t in json.loads(gaps_text or "[]"))
        return cls(position, gaps)


def latest_id(connection: Connection | Session) -> int:
    """The highest movement id committed so far (0 when there is none)."""
    return connection.execute(select(func.max(StockMovement.id))).scalar_one() or 0


def read(
    connection: Connection | Session,
    tail: Tail,
    columns: Sequence[Any],
    upto: int,
    now: float,
    gap_seconds: float = GAP_SECONDS,
) -> tuple[list[tuple[Any, ...]], Tail]:
    """`columns` of the movements with ids in (tail.position, upto] or in one of its gaps, and
    the tail after them: at `upto`, with the ids of both it did not find as its gaps (those
    missed for longer than `gap_seconds` given up)."""
    ranges = list(tail.gaps)
    if upto > tail.position:
        ranges.append(Gap(tail.position + 1, upto, now))
    if not ranges:
        return [], tail
    movement_id = col(StockMovement.id)
    rows = connection.execute(
        select(movement_id, *columns).where(
            or_(*(movement_id.between(g.first, g.last) for g in ranges))
        )
    ).all()
    seen = sorted({row[0] for row in rows})
    gaps = [
        missing
        for gap in ranges
        if now - gap.since <= gap_seconds
        for missing in _unseen(gap, seen)
    ]
    gaps.sort(key=lambda g: g.first)
    if len(gaps) > MAX_GAPS:
        kept = sorted(gaps, key=lambda g: g.since)[-MAX_GAPS:]
        gaps = sorted(kept, key=lambda g: g.first)
    return [tuple(row[1:]) for row in rows], Tail(max(tail.position, upto), tuple(gaps))


def _unseen(gap: Gap, seen: list[int]) -> list[Gap]:
    """The ranges of `gap` whose ids are not in `seen` (sorted)."""
    found = seen[bisect_left(seen, gap.first) : bisect_right(seen, gap.last)]
    missing = []
    start = gap.first
    for movement_id in found:
        if movement_id > start:
            missing.append(Gap(start, movement_id - 1, gap.since))
        start = movement_id + 1
    if start <= gap.last:
        missing.append(Gap(start, gap.last, gap.since))
    return missing
