"""A small real network in a fresh database, for ledger-level tests."""

from sqlalchemy import Engine
from sqlmodel import select

from ledger import stock
from ledger.db import transaction
from ledger.tables import Node, Sku, StockPosition


def seed(
    engine: Engine, units: dict[str, int], safety: int = 0, skus: tuple[str, ...] = ("TEE",)
) -> None:
    with transaction(engine) as session:
        for sku in skus:
            session.add(Sku(sku=sku, name=sku))
        for node_id in units:
            session.add(
                Node(node_id=node_id, name=node_id, node_type="warehouse", lat=0, lon=0,
                     system_url="http://sim")
            )  # fmt: skip
        session.flush()
        for node_id, on_hand in units.items():
            for sku in skus:
                stock.open_position(session, node_id, sku, on_hand, safety_override=safety)


def position(engine: Engine, node_id: str, sku: str = "TEE") -> tuple[int, int, int]:
    """(on hand, reserved, held)"""
    with transaction(engine) as session:
        p = session.exec(
            select(StockPosition).where(StockPosition.node_id == node_id, StockPosition.sku == sku)
        ).one()
        return p.on_hand, p.reserved, p.held
