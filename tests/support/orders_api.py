"""Building order payloads for tests."""

import itertools
import uuid

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
