"""When a node's own recent record says it should take no new orders.

A node that rejects or misses SLAs on a large share of what it was given is costing every order
sent there a round trip and a reallocation. The rule needs both a minimum count (one bad shipment
at a quiet store is noise) and a share of the node's recent shipments (five rejections at a DC
shipping thousands an hour is normal)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeHealthRule:
    window_seconds: float = 900.0
    min_incidents: int = 3
    max_incident_share: float = 0.5


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """What a node did in the window: shipments it handled and how many of them it failed."""

    node_id: str
    shipments: int
    incidents: int
    rejections: int
    missed_slas: int


def degradation_reason(record: NodeRecord, rule: NodeHealthRule) -> str | None:
    """Why the node should be degraded now, or None while it is within the rule."""
    handled = max(record.shipments, record.incidents)
    if record.incidents < rule.min_incidents or handled == 0:
        return None
    share = record.incidents / handled
    if share < rule.max_incident_share:
        return None
    return (
        f"automatically degraded: {record.incidents} of its last {handled} shipments failed "
        f"({record.rejections} rejected, {record.missed_slas} missed an SLA) in "
        f"{rule.window_seconds / 60:g} min, above the {rule.max_incident_share:.0%} threshold"
    )
