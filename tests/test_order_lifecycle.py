"""An order through the whole embedded stack: API -> workflow -> simulators -> completed."""

from ledger.audit import ledger_imbalances
from ledger.db import transaction
from tests.network import build_network
from tests.orders_api import order_payload


async def test_order_completes_with_tracking_number(stack) -> None:
    net = build_network(
        stack.engine,
        stack.simulator_url,
        nodes={"near": {"type": "warehouse", "km_east": 5}, "far": {"type": "warehouse", "km_east": 300}},
        stock={("near", "tee"): 5, ("far", "tee"): 5},
    )
    response = await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 2)]))
    assert response.status_code == 201, response.text
    order_id = response.json()["order_id"]

    order = await stack.wait_for_status(order_id, "COMPLETED")

    [shipment] = order["shipments"]
    assert shipment["node_id"] == net.node("near")
    assert shipment["status"] == "SHIPPED"
    assert shipment["tracking_number"].startswith("1Z")
    with transaction(stack.engine) as session:
        assert ledger_imbalances(session) == []
