"""Nodes and stock positions: what ops look at, a node's status, and a receipt / adjustment entry
point. Status changes and adjustments are services.network's; this module parses, authorizes,
starts the outage fan-out and maps."""

import uuid

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from sqlmodel import col, select
from temporalio.service import RPCError

from api.deps import EngineDep, SessionDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.schemas import (
    Node,
    NodeStatusChange,
    NodeStatusChanged,
    NodeStatusChangePublic,
    StockAdjustment,
    StockPositionPublic,
)
from api.security import Ops, actor_of, require
from contracts.ids import node_outage_workflow_id
from contracts.outage import NodeOutageInput
from contracts.starters import start_node_outage
from domain.availability import available_to_promise
from ledger.tables import Node as NodeRow
from ledger.tables import NodeStatusChange as NodeStatusRecord
from ledger.tables import StockPosition
from security.roles import Role
from services import network

router = APIRouter(prefix="/v1", tags=["network"], dependencies=[Depends(require(Role.OPS))])


@router.get("/nodes", response_model=list[Node])
def list_nodes(session: SessionDep) -> list[Node]:
    nodes = session.exec(select(NodeRow).order_by(col(NodeRow.node_id))).all()
    return [Node.model_validate(n, from_attributes=True) for n in nodes]


@router.get("/nodes/{node_id}/status-history", response_model=list[NodeStatusChangePublic])
def node_status_history(node_id: str, session: SessionDep) -> list[NodeStatusChangePublic]:
    """Every status change of the node, newest first: who (a person, or the node-health rule)
    took it out of sourcing, when and why."""
    if session.get(NodeRow, node_id) is None:
        raise ApiError(404, "unknown_node", f"no node {node_id}")
    changes = session.exec(
        select(NodeStatusRecord)
        .where(col(NodeStatusRecord.node_id) == node_id)
        .order_by(col(NodeStatusRecord.id).desc())
    ).all()
    return [NodeStatusChangePublic.model_validate(c, from_attributes=True) for c in changes]


@router.get("/inventory/{sku}", response_model=list[StockPositionPublic])
def stock_of_sku(sku: str, session: SessionDep) -> list[StockPositionPublic]:
    positions = session.exec(
        select(StockPosition)
        .where(col(StockPosition.sku) == sku)
        .order_by(col(StockPosition.node_id))
    ).all()
    if not positions:
        raise ApiError(404, "unknown_sku", f"no stock positions for SKU {sku}")
    return [_public(p) for p in positions]


@router.post("/inventory/adjustments", response_model=StockPositionPublic)
def adjust_stock(
    adjustment: StockAdjustment, engine: EngineDep, caller: Ops
) -> StockPositionPublic:
    """Receive stock (+) or write it off (-). Refused if on hand would drop below reserved. The
    movement records the reason and the key that made it."""
    position = network.adjust_stock(
        engine,
        adjustment.node_id,
        adjustment.sku,
        adjustment.delta,
        reason=adjustment.reason,
        actor=actor_of(caller),
    )
    return _public(position)


def _public(p: StockPosition) -> StockPositionPublic:
    return StockPositionPublic(
        node_id=p.node_id,
        sku=p.sku,
        on_hand=p.on_hand,
        reserved=p.reserved,
        held=p.held,
        safety_stock=p.safety_stock,
        available=available_to_promise(p),
    )


@router.put("/nodes/{node_id}/status", response_model=NodeStatusChanged)
async def change_node_status(
    node_id: str,
    change: NodeStatusChange,
    engine: EngineDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> NodeStatusChanged:
    """Down or degraded: the node takes no new orders. Down (or degraded with
    `reallocate_unpicked`) also moves every order there that has not been picked to other nodes
    (a NodeOutage workflow, at a bounded rate). Up: eligible again."""
    recorded = await run_in_threadpool(
        network.change_node_status,
        engine,
        node_id,
        change.status,
        change.reason,
        change.reallocate_unpicked,
    )
    workflow_id = None
    if recorded.reallocate_unpicked:
        # A person's change: a fresh id per request (the rule's are named by their change id).
        workflow_id = node_outage_workflow_id(node_id, uuid.uuid4().hex[:8])
        request = NodeOutageInput(
            node_id=node_id, reason=f"{node_id} is {change.status}: {change.reason}"
        )
        # False (this id already started) can only mean this change's fan-out exists: report its id.
        try:
            await start_node_outage(temporal, request, workflow_id, settings.task_queue)
        except RPCError as exc:
            # The status is recorded (the node takes no new orders); its orders have not moved.
            # Another PUT records the change again and starts a fan-out of its own.
            raise ApiError(
                503,
                "orchestrator_unavailable",
                f"{node_id} is {change.status}, but moving its unpicked orders did not start"
                f" (Temporal: {exc.message}): PUT the status again to start it",
            ) from exc
    return NodeStatusChanged(
        node_id=node_id, status=change.status, reallocation_workflow_id=workflow_id
    )
