"""Pre-orders through the whole stack: a purchase order's date is promised at checkout on a
channel that allows pre-orders, the order sold with it waits BACKORDERED, and receiving the goods
(POST /v1/feeds/{source}/receipts) allocates it through the backorder sweep: it ships, promise
kept. A channel without pre-orders refuses such an order, naming the field."""

import uuid
from datetime import UTC, date, datetime, timedelta

from tests.support.housekeeping_runs import run_housekeeping
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.network import CUSTOMER, build_network
from tests.support.orders_api import order_payload

ONE_WAREHOUSE = {"near": {"type": "warehouse", "km_east": 5}}


async def _preorder_channel(stack) -> str:
    channel = f"pre-{uuid.uuid4().hex[:8]}"
    body = {"name": "Launches", "channel_type": "dtc", "allow_preorders": True}
    created = await stack.http.put(f"/v1/channels/{channel}", json=body)
    assert created.status_code in (200, 201), created.text
    assert created.json()["allow_preorders"] is True
    return channel


def _events(order: dict, event: str) -> list[str]:
    return [e["detail"] for e in order["timeline"] if e["event"] == event]


async def test_a_purchase_orders_date_is_promised_at_checkout_and_its_receipt_ships_the_order(
    stack,
) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 0})
    channel = await _preorder_channel(stack)
    due = datetime.now(UTC).date() + timedelta(days=9)
    po = f"PO-{net.prefix}"
    line = {"event_id": f"{po}-1", "kind": "purchase_order", "reference": po, "line": 1,
            "node_id": net.node("near"), "sku": net.sku("tee"), "quantity": 3,
            "expected_date": due.isoformat()}  # fmt: skip
    fed = await stack.http.post("/v1/feeds/erp/incoming", json={"lines": [line]})
    assert fed.status_code == 200, fed.text
    cart = {"channel": channel, "destination": dict(CUSTOMER),
            "lines": [{"line_no": 1, "sku": net.sku("tee"), "quantity": 2}]}  # fmt: skip

    checked = await stack.http.post("/v1/checkout/check", json=cart)
    elsewhere = await stack.http.post("/v1/checkout/check", json=cart | {"channel": "web"})

    assert checked.status_code == 200, checked.text
    (option,) = checked.json()["options"]  # no stock now: the pre-order only
    assert option["code"] == "preorder"
    promised = date.fromisoformat(option["promised_date"])
    assert promised > due
    assert elsewhere.json()["options"] == []
    sold = order_payload(
        net, [("tee", 2)], channel=channel, delivery_option="preorder",
        promised_date=promised.isoformat(),
    )  # fmt: skip
    submitted = await stack.http.post("/v1/orders", json=sold)
    assert submitted.status_code == 201, submitted.text
    order_id = submitted.json()["order_id"]
    waiting = await stack.wait_for_status(order_id, "BACKORDERED")
    assert waiting["order"]["delivery_option"] == "preorder"
    assert waiting["order"]["promised_date"] == promised.isoformat()
    assert waiting["promise"] is None and waiting["attention"] is None  # nothing at risk
    # Another cart for the 3 coming: 2 are this order's, so 2 more are never covered.
    again = await stack.http.post("/v1/checkout/check", json=cart)
    assert again.json()["options"] == []

    receipt = {"event_id": f"{po}-r1", "kind": "purchase_order", "reference": po, "line": 1,
               "quantity": 3, "received_at": datetime.now(UTC).isoformat()}  # fmt: skip
    received = await stack.http.post(
        f"/v1/feeds/wms-{net.prefix}/receipts", json={"receipts": [receipt]}
    )
    assert received.status_code == 200, received.text
    swept = await run_housekeeping(stack)  # what the Schedule runs every few seconds

    assert order_id in swept.backorders_retried
    done = await stack.wait_for_status(order_id, "COMPLETED")
    assert [s["node_id"] for s in done["shipments"]] == [net.node("near")]
    assert done["promise"]["option"] == "preorder"
    assert done["promise"]["promised_date"] == promised.isoformat()
    assert done["promise"]["at_risk"] is False
    assert _events(done, "retry") == [f"stock arrived: {net.sku('tee')}"]
    assert _events(done, "promise at risk") == []
    assert_ledger_balances(stack.engine, [order_id])


async def test_a_preorder_on_a_channel_without_preorders_is_refused_naming_the_field(
    stack,
) -> None:
    net = build_network(stack.engine, stack.simulator_url, ONE_WAREHOUSE, {("near", "tee"): 0})
    promised = (datetime.now(UTC).date() + timedelta(days=9)).isoformat()
    sold = order_payload(net, [("tee", 1)], delivery_option="preorder", promised_date=promised)

    refused = await stack.http.post("/v1/orders", json=sold)

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "preorders_not_allowed"
    assert refused.json()["message"].startswith("delivery_option: channel web")
