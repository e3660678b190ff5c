"""Node POSTs (release, dispatch, cancel) carry an Idempotency-Key that stays the same when the
call is retried, so a node system deduplicates by header as well as by the body's shipment id.
A real HTTP server answers 503 to each first attempt, as a busy node does."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request, Response

from connectors.http import JsonHttpClient
from connectors.nodes import DispatchRequest, NodeConnectors, ReleaseRequest
from domain.geo import GeoPoint
from domain.orders import Address, DeliveryMethod, OrderLine
from stack.servers import ServerThread

SHIPMENT = "order-web-77-s1"


def flaky_node_app(seen: dict[str, list[str | None]]) -> FastAPI:
    """Records each POST's Idempotency-Key per path; the first POST to a path gets a 503."""
    app = FastAPI()

    @app.post("/{path:path}")
    async def any_post(path: str, request: Request) -> Response:
        keys = seen.setdefault(path, [])
        keys.append(request.headers.get("idempotency-key"))
        if len(keys) == 1:
            return Response(status_code=503)
        return Response(
            content=f'{{"shipment_id": "{SHIPMENT}", "status": "ok"}}',
            media_type="application/json",
        )

    return app


@pytest.fixture
def node_system() -> Iterator[tuple[str, dict[str, list[str | None]]]]:
    seen: dict[str, list[str | None]] = {}
    server = ServerThread(flaky_node_app(seen)).start()
    yield server.url, seen
    server.stop()


@pytest.mark.parametrize("node_type", ["warehouse", "store"])
async def test_each_node_post_sends_the_same_idempotency_key_on_its_retry(
    node_system: tuple[str, dict[str, list[str | None]]], node_type: str
) -> None:
    url, seen = node_system
    http = JsonHttpClient("node", attempts=3)
    connector = NodeConnectors(http).for_node_type(node_type)
    release = ReleaseRequest(
        order_id="order-web-77",
        shipment_id=SHIPMENT,
        node_id="WH-1",
        lines=[OrderLine(line_no=1, sku="TEE", quantity=1)],
        ship_to=Address(
            name="A",
            line1="1 Main St",
            city="Reno",
            postal_code="89501",
            country="US",
            location=GeoPoint(lat=39.5, lon=-119.8),
        ),
        delivery_method=DeliveryMethod.HOME,
    )
    dispatch = DispatchRequest(
        order_id="order-web-77",
        shipment_id=SHIPMENT,
        node_id="WH-1",
        carrier="ups",
        service="ground",
        tracking_number="1Z",
        label_id="L1",
    )
    try:
        await connector.release(url, release)
        await connector.dispatch(url, dispatch)
        await connector.cancel(url, SHIPMENT, "customer asked")
    finally:
        await http.aclose()

    resource = connector.resource
    assert seen == {
        resource: [f"{SHIPMENT}:release"] * 2,
        f"{resource}/{SHIPMENT}/dispatch": [f"{SHIPMENT}:dispatch"] * 2,
        f"{resource}/{SHIPMENT}/cancel": [f"{SHIPMENT}:cancel"] * 2,
    }
