"""One order's allocation at a time.

Temporal can run two attempts of one order's allocation at once: a first attempt that outlived
its start-to-close timeout is still running when the retry starts. Each checks the order's
reservations before reserving, but on PostgreSQL (READ COMMITTED) neither sees the other's
uncommitted rows, so the two can reserve one line at two nodes."""

from sqlalchemy import text
from sqlmodel import Session


def take_allocation_turn(session: Session, order_id: str) -> None:
    """PostgreSQL: wait for any other transaction allocating this order, then hold the turn
    until this transaction ends; what the caller reads next includes the other's commit.
    SQLite has one writer at a time already. A hash collision only makes two orders take turns."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("select pg_advisory_xact_lock(hashtext('opendom.allocation.' || :order_id))"),
        {"order_id": order_id},
    )
