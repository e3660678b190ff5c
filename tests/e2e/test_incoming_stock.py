"""Incoming stock on the whole stack: a purchase order is seen by date and not sold, its receipt
turns it into stock an order is then served from."""

from datetime import UTC, datetime

from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import build_network
from tests.support.orders_api import order_payload

NODES = {"dc": {"type": "warehouse", "km_east": 30}}


async def test_a_received_purchase_order_is_stock_an_order_is_served_from(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 0})
    po = f"PO-{net.prefix}"
    line = {"event_id": f"{po}-1", "kind": "purchase_order", "reference": po, "line": 1,
            "node_id": net.node("dc"), "sku": net.sku("tee"), "quantity": 3,
            "expected_date": "2026-12-14"}  # fmt: skip
    receipt = {"event_id": f"{po}-r1", "kind": "purchase_order", "reference": po, "line": 1,
               "quantity": 3, "received_at": datetime.now(UTC).isoformat()}  # fmt: skip

    fed = await stack.http.post("/v1/feeds/erp/incoming", json={"lines": [line]})
    (before,) = (await stack.http.get("/v1/availability", params={"sku": net.sku("tee")})).json()
    received = await stack.http.post(
        f"/v1/feeds/wms-{net.prefix}/receipts", json={"receipts": [receipt]}
    )
    (after,) = (await stack.http.get("/v1/availability", params={"sku": net.sku("tee")})).json()

    assert fed.status_code == 200 and received.status_code == 200, (fed.text, received.text)
    assert (before["total"], before["incoming"]) == (0, [{"date": "2026-12-14", "units": 3}])
    assert (after["total"], after["incoming"]) == (3, [])
    order_id = (await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 3)]))).json()[
        "order_id"
    ]
    order = await stack.wait_for_status(order_id, "COMPLETED")
    assert [s["node_id"] for s in order["shipments"]] == [net.node("dc")]
    assert_ledger_balances(stack.engine, [order_id])
