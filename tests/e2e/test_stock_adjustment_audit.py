"""A stock adjustment's movement says why and who: the reason the API requires, and the key that
made it (audit L4)."""

from sqlmodel import col, select

from ledger.db import transaction
from ledger.tables import StockMovement
from tests.support.network import build_network

NODES = {"a": {"km_east": 5}}


async def test_a_stock_adjustment_records_its_reason_and_who_made_it(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    adjustment = {
        "node_id": net.node("a"),
        "sku": net.sku("tee"),
        "delta": -2,
        "reason": "cycle count 12: two damaged",
    }

    response = await stack.http.post("/v1/inventory/adjustments", json=adjustment)

    assert response.status_code == 200, response.text
    with transaction(stack.engine) as session:
        [movement] = session.exec(
            select(StockMovement).where(
                col(StockMovement.node_id) == net.node("a"),
                col(StockMovement.kind) == "adjustment",
            )
        ).all()
    assert "cycle count 12: two damaged" in movement.cause
    assert f"key:{stack.admin.key_id}" in movement.cause
