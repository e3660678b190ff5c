"""Units of work on a shipment's stock that follow what its node did, not what was planned."""

from datetime import datetime

from sqlalchemy import Engine

from ledger import late_shipments
from ledger.db import transaction


def record_shipped_after_move(
    engine: Engine, order_id: str, shipment_id: str, shipped_at: datetime | None = None
) -> int:
    """The node shipped a shipment the order had moved away (its reservation released): its
    units leave that node's on hand. Idempotent; returns the units taken off (0 on a retry)."""
    with transaction(engine) as session:
        return late_shipments.ship_released(session, order_id, shipment_id, shipped_at)
