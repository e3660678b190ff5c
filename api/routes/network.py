"""Nodes and stock positions: what ops look at, and a receipt / adjustment entry point."""

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import SessionDep
from api.errors import ApiError
from api.schemas import StockAdjustment, StockPositionPublic
from domain.availability import available_to_promise
from ledger import stock
from ledger.db import transaction
from ledger.tables import Node, StockPosition

router = APIRouter(prefix="/v1", tags=["network"])


@router.get("/nodes", response_model=list[Node])
def list_nodes(session: SessionDep) -> list[Node]:
    return list(session.exec(select(Node).order_by(col(Node.node_id))).all())


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
