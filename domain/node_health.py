"""When a node's own recent record says it should take no new orders.

A node that rejects or misses SLAs on a large share of what it was given is costing every order
sent there a round trip and a reallocation. The rule needs both a minimum count (one bad shipment
at a quiet store is noise) and a share of the node's recent shipments (five rejections at a DC
shipping thousands an hour is normal).

A node that ships most of its parcels after their ship-by date breaks the customer's promise
even though every parcel leaves: lateness is counted on its own (late, of the shipments
handled), with the same minimum count, so a node that is never late is judged as before and
a late parcel is not weighed like a rejected one."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

from domain.promise_kept import utc_date


@dataclass(frozen=True, slots=True)
class NodeHealthRule:
    window_seconds: float = 900.0
    min_incidents: int = 3
    max_incident_share: float = 0.5
    # Degraded when at least `min_incidents` of its shipments in the window left after their
    # ship-by date and they are at least this share of what it handled.
    max_late_share: float = 0.5


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """What a node did in the window: shipments it handled, how many of them it failed
    (rejected or missed an SLA), and how many it shipped after their ship-by date."""

    node_id: str
    shipments: int
    incidents: int
    rejections: int
    missed_slas: int
    late: int = 0


def degradation_reason(record: NodeRecord, rule: NodeHealthRule) -> str | None:
    """Why the node should be degraded now, or None while it is within the rule."""
    minutes = f"{rule.window_seconds / 60:g} min"
    handled = max(record.shipments, record.incidents)
    if record.incidents >= rule.min_incidents and (
        record.incidents / handled >= rule.max_incident_share
    ):
        return (
            f"automatically degraded: {record.incidents} of its last {handled} shipments "
            f"failed ({record.rejections} rejected, {record.missed_slas} missed an SLA) in "
            f"{minutes}, above the {rule.max_incident_share:.0%} threshold"
        )
    shipped = max(record.shipments, record.late)
    if record.late >= rule.min_incidents and record.late / shipped >= rule.max_late_share:
        return (
            f"automatically degraded: {record.late} of its last {shipped} shipments left after "
            f"their ship-by date in {minutes}, above the {rule.max_late_share:.0%} threshold"
        )
    return None


def late_shipment_reason(
    shipped_at: datetime, ship_by: date, zone: tzinfo | None = None
) -> str | None:
    """Why a shipment that left at `shipped_at` counts against its node's health (it left after
    its ship-by date), or None: it left in time. The day it left is the earlier of its UTC date
    and its date on the node's clock (`zone`): ship-by dates are planned on the nodes' clock when
    they share one and in UTC when they do not, and an evening carrier wave in Chicago (past
    midnight UTC) must not count as a day late."""
    left = utc_date(shipped_at)
    if zone is not None:
        aware = shipped_at if shipped_at.tzinfo else shipped_at.replace(tzinfo=UTC)
        left = min(left, aware.astimezone(zone).date())
    late = max(0, (left - ship_by).days)
    if not late:
        return None
    days = "day" if late == 1 else "days"
    return f"shipped {left}, {late} {days} after its ship-by date {ship_by}"
