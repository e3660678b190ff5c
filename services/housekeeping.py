"""Inventory housekeeping as units of work: expire the checkout holds that are due, publish
out-of-stock / back-in-stock events, and list the stock feed sources to pull from (the PIMs'
catalogues are pulled by services.catalogue).

Run by the housekeeping Schedule's activities; each is idempotent, so a retried run only does
what the last one left undone."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ledger import holds
from ledger.db import transaction
from ledger.tables import FeedSource
from ledger.thresholds import publish_threshold_events
from security.keys import forget_signatures_received_before
from security.signatures import SIGNATURE_RETENTION_SECONDS

STOCK = "stock"  # FeedSource.kind of a system sending stock deltas


@dataclass(frozen=True, slots=True)
class EnabledFeedSource:
    """A source system the housekeeping pulls stock deltas from, and where it got to."""

    source: str
    url: str
    cursor: str | None


def expire_due_holds(engine: Engine, batch: int) -> int:
    """Give back the stock of every hold whose time is up, `batch` holds per transaction, until
    a batch comes back short; returns the holds expired. Forgets the callback signatures no
    replay can use any more too (prune_callback_signatures), until the housekeeping workflow
    has an activity of its own for that."""
    expired = 0
    while True:
        with transaction(engine) as session:
            ended = holds.expire_holds(session, datetime.now(UTC), batch)
        expired += len(ended)
        if len(ended) < batch:
            prune_callback_signatures(engine, batch)
            return expired


def prune_callback_signatures(engine: Engine, batch: int) -> int:
    """Forget the accepted callbacks' signatures older than a replay could be accepted with
    (security.signatures.SIGNATURE_RETENTION_SECONDS), `batch` per transaction; returns how
    many."""
    cutoff = datetime.now(UTC) - timedelta(seconds=SIGNATURE_RETENTION_SECONDS)
    forgotten = 0
    while True:
        with transaction(engine) as session:
            done = forget_signatures_received_before(session, cutoff, batch)
        forgotten += done
        if done < batch:
            return forgotten


def publish_availability_events(engine: Engine, max_movements: int) -> int:
    """Out-of-stock / back-in-stock events for the stock movements since the last run (at most
    `max_movements` of them), in one transaction; returns the events published."""
    with transaction(engine) as session:
        return len(publish_threshold_events(session, max_movements))


def enabled_feed_sources(engine: Engine) -> list[EnabledFeedSource]:
    """The stock sources (ERP, WMS) to pull deltas from; PIMs (kind catalogue) are pulled by
    services.catalogue.pull_catalogue, in another format."""
    with Session(engine) as session:
        rows = session.exec(
            select(FeedSource).where(
                col(FeedSource.enabled).is_(True), col(FeedSource.kind) == STOCK
            )
        ).all()
        return [EnabledFeedSource(r.source, r.url, r.cursor) for r in rows]
