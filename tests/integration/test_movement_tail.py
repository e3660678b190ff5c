"""Tailing the stock movements by id (ledger.movement_tail): on PostgreSQL an id becomes visible
at COMMIT, so a transaction open while later ones commit must still be read once it commits,
by the threshold events and by the availability cache; gaps a rolled-back transaction leaves
are given up after a bounded age. SQLite (one writer) never shows a gap."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from ledger import movement_tail, stock
from ledger.availability_cache import AvailabilityCache
from ledger.db import transaction
from ledger.movement_tail import GAP_SECONDS, MAX_GAPS
from ledger.tables import AvailabilityEvent, StockMovement
from ledger.thresholds import publish_threshold_events
from tests.support.ledger_fixtures import seed

ON_POSTGRES = pytest.mark.parametrize(
    "ledger_engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def publish(engine: Engine) -> list[tuple[str, str, str]]:
    with transaction(engine) as session:
        events = publish_threshold_events(session)
        return [(e.channel, e.sku, e.event) for e in events]


@contextmanager
def empty_while_a_later_transaction_commits(engine: Engine) -> Iterator[Session]:
    """Takes all of A at N1 in a transaction left open while B's stock, a later id, is taken
    and committed; the caller reads the tail inside, then A commits on leaving."""
    with transaction(engine) as late:
        stock.adjust_on_hand(late, "N1", "A", -5)  # its movement id is taken now
        with transaction(engine) as early:
            stock.adjust_on_hand(early, "N1", "B", -5)
        yield late


def sellable(cache: AvailabilityCache, sku: str) -> dict[str, int]:
    return {c.node_id: c.available.get(sku, 0) for c in cache.candidates([sku], "web")}


@ON_POSTGRES
def test_threshold_events_read_a_movement_that_commits_after_a_later_one(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 5}, skus=("A", "B"))
    assert publish(ledger_engine) == []  # both in stock: states recorded, nothing to say

    with empty_while_a_later_transaction_commits(ledger_engine):
        assert publish(ledger_engine) == [("*", "B", "out_of_stock")]

    assert publish(ledger_engine) == [("*", "A", "out_of_stock")]
    with Session(ledger_engine) as session:
        assert session.query(AvailabilityEvent).count() == 2


@ON_POSTGRES
def test_the_availability_cache_reads_a_movement_that_commits_after_a_later_one(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 5}, skus=("A", "B"))
    cache = AvailabilityCache(ledger_engine)
    cache.load()
    assert sellable(cache, "A") == {"N1": 5}

    with empty_while_a_later_transaction_commits(ledger_engine):
        cache.refresh()
        assert sellable(cache, "B") == {}
        assert sellable(cache, "A") == {"N1": 5}  # not committed yet

    cache.refresh()
    assert sellable(cache, "A") == {}


@ON_POSTGRES
def test_the_availability_cache_loaded_beside_an_open_transaction_reads_it_once_committed(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 5}, skus=("A", "B"))
    cache = AvailabilityCache(ledger_engine)

    with empty_while_a_later_transaction_commits(ledger_engine):
        cache.load()
        assert sellable(cache, "A") == {"N1": 5}

    cache.refresh()
    assert sellable(cache, "A") == {}


class RolledBack(Exception):
    pass


def test_a_rolled_back_movement_is_looked_for_until_its_gap_is_given_up(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"N1": 5}, skus=("A", "B"))
    with Session(ledger_engine) as session:
        start = movement_tail.Tail(movement_tail.latest_id(session))
    with pytest.raises(RolledBack), transaction(ledger_engine) as doomed:
        stock.adjust_on_hand(doomed, "N1", "A", -1)
        raise RolledBack()
    with transaction(ledger_engine) as session:
        stock.adjust_on_hand(session, "N1", "B", -1)

    columns = [StockMovement.sku]
    with Session(ledger_engine) as session:
        latest = movement_tail.latest_id(session)
        rows, tail = movement_tail.read(session, start, columns, latest, now=0.0)
        assert rows == [("B",)]
        if ledger_engine.dialect.name == "sqlite":
            # One writer, and the rolled-back id handed out again: no gap can appear.
            assert tail == movement_tail.Tail(latest)
            return
        rolled_back = start.position + 1
        assert tail == movement_tail.Tail(
            latest, (movement_tail.Gap(rolled_back, rolled_back, 0.0),)
        )
        rows, tail = movement_tail.read(session, tail, columns, latest, now=GAP_SECONDS)
        assert rows == [] and len(tail.gaps) == 1  # still looked for
        rows, tail = movement_tail.read(session, tail, columns, latest, now=GAP_SECONDS + 1)
        assert rows == [] and tail == movement_tail.Tail(latest)


def test_past_the_most_gaps_a_tail_keeps_the_newest(ledger_engine: Engine) -> None:
    far = 1_000_000  # ids no movement has
    gaps = tuple(movement_tail.Gap(far + 2 * i, far + 2 * i, float(i)) for i in range(MAX_GAPS + 5))
    tail = movement_tail.Tail(far + 3 * MAX_GAPS, gaps)

    with Session(ledger_engine) as session:
        _, tail = movement_tail.read(session, tail, [], tail.position, now=MAX_GAPS + 5.0)

    assert tail.gaps == gaps[5:]
