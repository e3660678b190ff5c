"""Building order payloads for tests."""

import itertools
import uuid
from datetime import UTC, datetime

from domain.orders import Order
from tests.support.network import CUSTOMER, TestNetwork

_numbers = itertools.count(1)


def order_payload(
    net: TestNetwork,
    lines: list[tuple[str, int]],
    channel: str = "web",
    external_id: str | None = None,
    **overrides: object,
) -> dict:
    payload = {
        "channel": channel,
        "external_id": external_id or f"{net.prefix}-{next(_numbers)}-{uuid.uuid4().hex[:6]}",
        "order_type": "dtc",
        "priority": 5,
        "customer": {"customer_id": "C-1", "email": "ada@example.com"},
        "ship_to": {
            "name": "Ada Lovelace",
            "line1": "1 Place Bellecour",
            "city": "Lyon",
            "postal_code": "69002",
            "country": "FR",
            "location": dict(CUSTOMER),
        },
        "delivery_method": "home",
        "lines": [
            {"line_no": i, "sku": net.sku(sku), "quantity": qty}
            for i, (sku, qty) in enumerate(lines, start=1)
        ],
    }
    payload.update(overrides)
    return payload


def ledger_order(external_id: str, skus: list[str], submitted_at: datetime | None = None) -> Order:
    """An order of one unit of each SKU, for ledger tests that need no network: the same
    customer and address as `order_payload`."""
    return Order(
        order_id=f"order-web-{external_id}",
        channel="web",
        external_id=external_id,
        order_type="dtc",
        priority=5,
        customer={"customer_id": "C-1", "email": "ada@example.com"},
        ship_to={
            "name": "Ada Lovelace",
            "line1": "1 Place Bellecour",
            "city": "Lyon",
            "postal_code": "69002",
            "country": "FR",
            "location": dict(CUSTOMER),
        },
        delivery_method="home",
        lines=[{"line_no": i, "sku": sku, "quantity": 1} for i, sku in enumerate(skus, start=1)],
        submitted_at=submitted_at or datetime.now(UTC),
    )


async def submit_order(stack, payload: dict) -> str:  # type: ignore[no-untyped-def]
    """POST the order to the stack's API, which must accept it as new (201); its order id."""
    response = await stack.http.post("/v1/orders", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]
