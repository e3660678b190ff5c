"""The network as units of work: a node's status change (by a person or by the node-health rule,
on one code path), the orders a node's outage moves, and stock adjustments."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from domain.errors import DomainError
from domain.node_health import NodeHealthRule, degradation_reason
from domain.node_status import NodeStatus, reallocates_unpicked
from ledger import stock
from ledger.db import transaction
from ledger.network import orders_movable_from, set_node_status
from ledger.node_health import automatically_degraded, records_of_up_nodes
from ledger.tables import StockPosition


class ZeroAdjustment(DomainError):
    code = "invalid_request"

    def __init__(self) -> None:
        super().__init__("delta: must not be zero")


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A recorded status change, and whether the node's unpicked orders move away: the caller
    starts that fan-out, one per change (`change_id` names it)."""

    node_id: str
    status: NodeStatus
    reason: str
    change_id: int
    reallocate_unpicked: bool


def record_status_change(
    session: Session,
    node_id: str,
    status: NodeStatus,
    reason: str,
    reallocate_unpicked: bool | None = None,
    automatic: bool = False,
) -> StatusChange:
    """Take the node out of sourcing (degraded, down) or put it back (up), with the audit
    entry. `reallocate_unpicked` None: the status's default (domain.node_status). Refuses
    (InvalidStatusChange, UnknownReference) before anything is written."""
    reallocate = reallocates_unpicked(status, reallocate_unpicked)
    change = set_node_status(session, node_id, status, reason, automatic=automatic)
    return StatusChange(node_id, status, reason, change.id or 0, reallocate)


def change_node_status(
    engine: Engine,
    node_id: str,
    status: NodeStatus,
    reason: str,
    reallocate_unpicked: bool | None = None,
) -> StatusChange:
    """A person's status change (ops), in a transaction of its own."""
    with transaction(engine) as session:
        return record_status_change(session, node_id, status, reason, reallocate_unpicked)


def degrade_unhealthy_nodes(
    engine: Engine, rule: NodeHealthRule, now: datetime
) -> list[StatusChange]:
    """Degrade every up node whose recent rejections and missed SLAs break the rule, as a
    person would, and move its unpicked orders away. Returns every node the rule degraded that
    is still degraded, this run's and earlier ones', each with `reallocate_unpicked` true: the
    caller starts each one's fan-out by its change id, so one a crash left unstarted is started
    by the next run, and none twice.
    Bringing a node back up is left to a person: the rule cannot tell that the cause was fixed."""
    since = now - timedelta(seconds=rule.window_seconds)
    with transaction(engine) as session:
        for record in records_of_up_nodes(session, since):
            if (reason := degradation_reason(record, rule)) is not None:
                record_status_change(
                    session,
                    record.node_id,
                    NodeStatus.DEGRADED,
                    reason,
                    reallocate_unpicked=True,
                    automatic=True,
                )
        degraded = automatically_degraded(session)
    return [
        StatusChange(d.node_id, NodeStatus.DEGRADED, d.reason, d.change_id, True) for d in degraded
    ]


def orders_at_node(engine: Engine, node_id: str) -> list[str]:
    """Open orders with a shipment at the node that has not been picked yet: what its outage
    moves away."""
    with Session(engine) as session:
        return orders_movable_from(session, node_id)


def adjust_stock(
    engine: Engine,
    node_id: str,
    sku: str,
    delta: int,
    reason: str = "",
    actor: str = "",
) -> StockPosition:
    """Receive stock (+) or write it off (-), the movement saying why and who (the audit trail a
    stock count is checked against). NegativeStock if on hand would drop below what is reserved
    or held; UnknownPosition if the node does not stock the SKU."""
    if delta == 0:
        raise ZeroAdjustment()
    with transaction(engine) as session:
        return stock.adjust_on_hand(
            session, node_id, sku, delta, cause=adjustment_cause(reason, actor)
        )


def adjustment_cause(reason: str, actor: str) -> str:
    """The movement's cause (StockMovement.cause holds 300 characters): the reason given, and
    who gave it."""
    cause = "manual adjustment"
    if actor:
        cause += f" by {actor}"
    if reason:
        cause += f": {reason}"
    return cause[:300]
