"""Nodes and stock positions: what ops look at, and a receipt / adjustment entry point."""

import uuid

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.schemas import StockAdjustment, StockPositionPublic
from api.security import require
from contracts.ids import node_outage_workflow_id
from contracts.outage import NodeOutageInput
from contracts.starters import start_node_outage
from domain.availability import available_to_promise
from domain.node_status import NodeStatus, reallocates_unpicked
from ledger import stock
from ledger.db import transaction
from ledger.network import set_node_status
from ledger.tables import Node, StockPosition
from ledger.tables import NodeStatusChange as NodeStatusRecord
from security.roles import Role

router = APIRouter(prefix="/v1", tags=["network"], dependencies=[Depends(require(Role.OPS))])


@router.get("/nodes", response_model=list[Node])
def list_nodes(session: SessionDep) -> list[Node]:
    return list(session.exec(select(Node).order_by(col(Node.node_id))).all())


@router.get("/nodes/{node_id}/status-history", response_model=list[NodeStatusRecord])
def node_status_history(node_id: str, session: SessionDep) -> list[NodeStatusRecord]:
    """Every status change of the node, newest first: who (a person, or the node-health rule)
    took it out of sourcing, when and why."""
    if session.get(Node, node_id) is None:
        raise ApiError(404, "unknown_node", f"no node {node_id}")
    return list(
        session.exec(
            select(NodeStatusRecord)
            .where(col(NodeStatusRecord.node_id) == node_id)
            .order_by(col(NodeStatusRecord.id).desc())
        ).all()
    )


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
def adjust_stock(adjustment: StockAdjustment, session: SessionDep) -> StockPositionPublic:
    """Receive stock (+) or write it off (-). Refused if on hand would drop below reserved."""
    if adjustment.delta == 0:
        raise ApiError(422, "invalid_request", "delta: must not be zero")
    with transaction(session.get_bind()) as tx:  # type: ignore[arg-type]
        position = stock.adjust_on_hand(tx, adjustment.node_id, adjustment.sku, adjustment.delta)
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


class NodeStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: NodeStatus
    reason: str = Field(min_length=1, max_length=300)
    reallocate_unpicked: bool | None = Field(
        default=None,
        description="move the node's unpicked orders to other nodes; default: yes when down, "
        "no when degraded (it finishes what it has and takes nothing new), never when up",
    )


class NodeStatusChanged(BaseModel):
    node_id: str
    status: NodeStatus
    reallocation_workflow_id: str | None = Field(
        description="the NodeOutage workflow moving this node's unpicked orders, if down"
    )


def _set_status(engine, node_id: str, change: NodeStatusChange) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as tx:
        set_node_status(tx, node_id, change.status, change.reason)


@router.put("/nodes/{node_id}/status", response_model=NodeStatusChanged)
async def change_node_status(
    node_id: str,
    change: NodeStatusChange,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> NodeStatusChanged:
    """Down or degraded: the node takes no new orders. Down (or degraded with
    `reallocate_unpicked`) also moves every order there that has not been picked to other nodes
    (a NodeOutage workflow, at a bounded rate). Up: eligible again."""
    reallocate = reallocates_unpicked(change.status, change.reallocate_unpicked)
    await run_in_threadpool(_set_status, session.get_bind(), node_id, change)
    workflow_id = None
    if reallocate:
        workflow_id = node_outage_workflow_id(node_id, uuid.uuid4().hex[:8])
        request = NodeOutageInput(
            node_id=node_id, reason=f"{node_id} is {change.status}: {change.reason}"
        )
        await start_node_outage(temporal, request, workflow_id, settings.task_queue)
    return NodeStatusChanged(
        node_id=node_id, status=change.status, reallocation_workflow_id=workflow_id
    )
