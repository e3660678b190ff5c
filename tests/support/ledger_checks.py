"""The ledger invariant every scenario must leave intact."""

from sqlalchemy import Engine

from ledger.audit import ledger_imbalances, open_reservations_of
from ledger.db import transaction


def assert_ledger_balances(engine: Engine, closed_order_ids: list[str] = ()) -> None:  # type: ignore[assignment]
    """Reserved equals the sum of open reservations everywhere, held the sum of active holds,
    incoming the open units of open incoming lines (none received beyond its quantity), every
    counter what its movements rebuild, and no closed (cancelled, completed, reallocated-away)
    order keeps a reservation."""
    with transaction(engine) as session:
        assert ledger_imbalances(session) == []
        leftovers = open_reservations_of(session, list(closed_order_ids))
        assert [(r.order_id, r.node_id, r.sku, r.quantity) for r in leftovers] == []
