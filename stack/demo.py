"""Submit a stream of sample orders to a running OpenDOM and follow them to the end."""

import asyncio
import random
import time
from collections import Counter

import httpx

from stack.demo_data import DEMO_DESTINATIONS, DEMO_NODES, DEMO_SKUS
from stack.progress import progress_bar

CHANNELS = [
    ("web", "dtc"),
    ("web", "dtc"),
    ("amazon", "marketplace"),
    ("b2b-portal", "b2b"),
    ("field-sales", "sales_rep"),
]
SETTLED = {"COMPLETED", "CANCELLED", "REJECTED", "BACKORDERED"}
PICKUP_STORES = [n for n in DEMO_NODES if n.can_pickup]


def sample_order(rng: random.Random, run_id: str, number: int) -> dict:
    channel, order_type = rng.choice(CHANNELS)
    city, postal_code, lat, lon = rng.choice(DEMO_DESTINATIONS)
    skus = rng.sample(sorted(DEMO_SKUS), k=rng.choice([1, 1, 2, 3]))
    order = {
        "channel": channel,
        "external_id": f"{run_id}-{number:05d}",
        "order_type": order_type,
        "priority": rng.choice([3, 5, 5, 5, 8]),
        "customer": {"customer_id": f"CUST-{rng.randrange(10_000):05d}"},
        "ship_to": {
            "name": "Demo Customer",
            "line1": f"{rng.randrange(1, 999)} Main Street",
            "city": city,
            "postal_code": postal_code,
            "country": "US",
            "location": {"lat": lat, "lon": lon},
        },
        "delivery_method": "home",
        "lines": [
            {"line_no": i, "sku": sku, "quantity": rng.choice([1, 1, 1, 2])}
            for i, sku in enumerate(skus, start=1)
        ],
    }
    if order_type == "dtc" and rng.random() < 0.15:
        store = rng.choice(PICKUP_STORES)
        order.update(delivery_method="pickup", pickup_node_id=store.node_id)
    return order


async def run_demo(
    api_url: str,
    orders: int,
    concurrency: int = 4,
    seed: int | None = None,
    follow_seconds: float = 300,
    api_key: str = "",
) -> Counter[str]:
    rng = random.Random(seed)
    run_id = f"demo-{int(time.time())}"
    headers = {"authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=headers) as http:
        order_ids = await _submit_all(
            http, [sample_order(rng, run_id, i) for i in range(orders)], concurrency
        )
        return await _follow(http, order_ids, follow_seconds)


async def _submit_all(http: httpx.AsyncClient, payloads: list[dict], concurrency: int) -> list[str]:
    order_ids: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def submit(payload: dict) -> None:
        async with gate:
            response = await http.post("/v1/orders", json=payload)
            response.raise_for_status()
            order_ids.append(response.json()["order_id"])
            progress_bar("submitted", len(order_ids), len(payloads), order_ids[-1])

    await asyncio.gather(*(submit(p) for p in payloads))
    return order_ids


async def _follow(http: httpx.AsyncClient, order_ids: list[str], seconds: float) -> Counter[str]:
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for order_id in order_ids:
            if statuses.get(order_id) in SETTLED:
                continue
            response = await http.get(f"/v1/orders/{order_id}")
            if response.status_code == 200:
                statuses[order_id] = response.json()["status"]
        settled = sum(1 for s in statuses.values() if s in SETTLED)
        summary = ", ".join(f"{k} {v}" for k, v in sorted(Counter(statuses.values()).items()))
        progress_bar("settled", settled, len(order_ids), summary[:40])
        if settled == len(order_ids):
            break
        await asyncio.sleep(0.5)
    return Counter(statuses.values())
