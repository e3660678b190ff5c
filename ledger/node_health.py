"""Node incidents (rejections, missed SLAs, shipments late against their ship-by date) and what
the node-health rule reads of them."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from domain.lifecycle import IncidentKind
from domain.node_health import NodeRecord
from domain.node_status import NodeStatus
from ledger.tables import Node, NodeIncident, NodeStatusChange, Reservation


def record_incident(
    session: Session, order_id: str, node_id: str, shipment_id: str, kind: str, reason: str
) -> bool:
    """Idempotent per shipment: a retried release does not count the failure twice."""
    if session.get(NodeIncident, shipment_id) is not None:
        return False
    session.add(
        NodeIncident(
            shipment_id=shipment_id, order_id=order_id, node_id=node_id, kind=kind, reason=reason
        )
    )
    session.flush()
    return True


def records_of_up_nodes(session: Session, since: datetime) -> list[NodeRecord]:
    """For every node that is up and had an incident since `since` (or since its last status
    change, whichever is later: a node brought back up starts with a clean record)."""
    records = []
    suspects = session.exec(
        select(NodeIncident.node_id)
        .join(Node, col(Node.node_id) == col(NodeIncident.node_id))
        .where(col(NodeIncident.at) >= since, col(Node.status) == NodeStatus.UP)
        .distinct()
    ).all()
    for node_id in suspects:
        changed = session.exec(
            select(func.max(NodeStatusChange.at)).where(col(NodeStatusChange.node_id) == node_id)
        ).one()
        start = max(since, _aware(changed)) if changed else since
        kinds = dict(
            session.exec(
                select(NodeIncident.kind, func.count())
                .where(col(NodeIncident.node_id) == node_id, col(NodeIncident.at) >= start)
                .group_by(col(NodeIncident.kind))
            ).all()
        )
        if not kinds:  # every incident predates its latest status change
            continue
        shipments = session.exec(
            select(func.count(func.distinct(Reservation.shipment_id))).where(
                col(Reservation.node_id) == node_id, col(Reservation.updated_at) >= start
            )
        ).one()
        late = kinds.pop(IncidentKind.LATE, 0)  # shipped all the same: not a failure
        records.append(
            NodeRecord(
                node_id=node_id,
                shipments=shipments,
                incidents=sum(kinds.values()),
                rejections=kinds.get(IncidentKind.REJECTED, 0),
                missed_slas=kinds.get(IncidentKind.TIMED_OUT, 0),
                late=late,
            )
        )
    return records


@dataclass(frozen=True, slots=True)
class AutomaticDegradation:
    node_id: str
    change_id: int
    reason: str


def automatically_degraded(session: Session) -> list[AutomaticDegradation]:
    """Nodes degraded by the health rule and still degraded (their latest change was that)."""
    latest = (
        select(col(NodeStatusChange.node_id), func.max(NodeStatusChange.id).label("last"))
        .group_by(col(NodeStatusChange.node_id))
        .subquery()
    )
    rows = session.exec(
        select(NodeStatusChange)
        .join(latest, col(NodeStatusChange.id) == latest.c.last)
        .join(Node, col(Node.node_id) == col(NodeStatusChange.node_id))
        .where(
            col(NodeStatusChange.automatic),
            col(NodeStatusChange.status) == NodeStatus.DEGRADED,
            col(Node.status) == NodeStatus.DEGRADED,
        )
    ).all()
    return [AutomaticDegradation(r.node_id, r.id or 0, r.reason) for r in rows]


def _aware(at: datetime) -> datetime:
    # SQLite hands timestamps back naive; they are stored as UTC.
    return at if at.tzinfo else at.replace(tzinfo=UTC)
