"""Keys, roles, signed callbacks, and HTTP hardening."""

import asyncio
import time

import pytest
from sqlmodel import select

from ledger.db import transaction
from ledger.tables import ApiClient
from security.keys import issue_key
from security.roles import Role
from tests.support.network import build_network
from tests.support.orders_api import order_payload

NODES = {"a": {"km_east": 5}, "b": {"km_east": 50}}


@pytest.fixture
def keys(stack):
    with transaction(stack.engine) as session:
        return {
            "web": issue_key(session, "web shop", Role.CHANNEL, channel="web"),
            "amazon": issue_key(session, "marketplace", Role.CHANNEL, channel="amazon"),
            "support": issue_key(session, "support desk", Role.SUPPORT),
            "ops": issue_key(session, "ops", Role.OPS),
        }


async def test_a_channel_key_cannot_read_or_cancel_another_channels_order(stack, keys) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    async with stack.client_for(keys["web"]) as web, stack.client_for(keys["amazon"]) as amazon:
        created = await web.post("/v1/orders", json=order_payload(net, [("tee", 1)]))
        order_id = created.json()["order_id"]

        own = await web.get(f"/v1/orders/{order_id}")
        other = await amazon.get(f"/v1/orders/{order_id}")
        cancel = await amazon.post(f"/v1/orders/{order_id}/cancel", json={"reason": "x"})
        listed = await amazon.get("/v1/orders", params={"channel": "web"})
        spoofed = await amazon.post("/v1/orders", json=order_payload(net, [("tee", 1)]))

    assert created.status_code == 201 and own.status_code == 200
    assert other.status_code == 404
    assert cancel.status_code == 403
    assert listed.status_code == 403
    assert spoofed.status_code == 403 and "channel amazon only" in spoofed.json()["message"]


async def test_roles_limit_what_each_key_may_do(stack, keys) -> None:
    adjustment = {"node_id": "x", "sku": "y", "delta": 1, "reason": "count"}
    async with stack.client_for(keys["web"]) as web, stack.client_for(keys["support"]) as support:
        assert (await web.post("/v1/inventory/adjustments", json=adjustment)).status_code == 403
        assert (
            await support.put("/v1/nodes/x/status", json={"status": "down", "reason": "r"})
        ).status_code == 403
    async with stack.client_for(keys["ops"]) as ops:
        assert (await ops.get("/v1/nodes")).status_code == 200
    anonymous = await stack.http.get("/v1/nodes", headers={"authorization": ""})
    forged = await stack.http.get("/v1/nodes", headers={"authorization": "Bearer odk_x_nope"})
    assert anonymous.status_code == 401 and forged.status_code == 401


async def test_keys_are_stored_hashed(stack, keys) -> None:
    with transaction(stack.engine) as session:
        stored = session.exec(select(ApiClient).where(ApiClient.key_id == keys["web"].key_id)).one()
    assert stored.key_hash != keys["web"].key
    assert keys["web"].key.split("_", 2)[2] not in stored.key_hash


async def test_a_node_cannot_post_events_for_another_nodes_shipment(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5, ("b", "tee"): 5}
    )
    await stack.set_node_mode(net.node("a"), "accept_only")
    with transaction(stack.engine) as session:
        node_b = issue_key(session, "node b", Role.NODE, node_id=net.node("b"))
    order_id = (await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))).json()[
        "order_id"
    ]
    order = await stack.wait_for_status(order_id, "IN_FULFILLMENT")
    shipment_id = order["shipments"][0]["shipment_id"]
    event = {"order_id": order_id, "shipment_id": shipment_id, "event": "rejected", "reason": "x"}

    as_a = await stack.signed_post(f"/v1/callbacks/nodes/{net.node('a')}/events", event, node_b)
    as_b = await stack.signed_post(f"/v1/callbacks/nodes/{net.node('b')}/events", event, node_b)

    assert as_a.status_code == 403 and "speaks for node" in as_a.json()["message"]
    assert as_b.status_code == 403 and "is not at" in as_b.json()["message"]
    still = (await stack.http.get(f"/v1/orders/{order_id}")).json()
    assert still["shipments"][0]["status"] == "ACCEPTED"


async def test_tampered_stale_unsigned_and_replayed_callbacks_are_refused(stack) -> None:
    path = "/v1/callbacks/nodes/N1/events"
    body = {"order_id": "order-web-none", "shipment_id": "order-web-none-S1", "event": "picked"}
    moment = str(int(time.time()))
    headers = {"authorization": f"Bearer {stack.gateway.key}", "content-type": "application/json"}

    unsigned = await stack.http.post(path, json=body, headers=headers)
    tampered = await stack.http.post(
        path,
        json=body,
        headers={**headers, "x-opendom-timestamp": moment, "x-opendom-signature": "0" * 64},
    )
    stale = await stack.signed_post(path, body, timestamp=int(time.time()) - 3600)

    assert unsigned.status_code == 401
    assert tampered.status_code == 401 and "signature" in tampered.json()["message"]
    assert stale.status_code == 401 and "timestamp" in stale.json()["message"]


async def test_a_replayed_callback_is_refused(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    await stack.set_node_mode(net.node("a"), "silent")
    order_id = (await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))).json()[
        "order_id"
    ]
    order = await stack.wait_for_status(order_id, "RELEASED")
    event = {
        "order_id": order_id,
        "shipment_id": order["shipments"][0]["shipment_id"],
        "event": "accepted",
    }
    moment = int(time.time())

    first = await stack.signed_post(
        f"/v1/callbacks/nodes/{net.node('a')}/events", event, timestamp=moment
    )
    replay = await stack.signed_post(
        f"/v1/callbacks/nodes/{net.node('a')}/events", event, timestamp=moment
    )

    assert first.status_code == 202
    assert replay.status_code == 409 and "already received" in replay.json()["message"]


async def test_responses_carry_security_headers_and_huge_bodies_are_refused(stack) -> None:
    response = await stack.http.get("/v1/nodes")
    host, port = stack.api_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(  # announce 64 MiB and send none of it: refused from the headers alone
        b"POST /v1/orders HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        b"Content-Length: 67108864\r\n\r\n"
    )
    status_line = await reader.readline()
    writer.close()

    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert b" 413 " in status_line


async def test_a_chunked_body_without_length_is_cut_off_at_the_limit_and_changes_nothing(
    stack,
) -> None:
    async def order_ids() -> set[str]:
        listed = (await stack.http.get("/v1/orders", params={"limit": 500})).json()
        return {o["order"]["order_id"] for o in listed}

    before = await order_ids()
    host, port = stack.api_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/orders HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {stack.admin.key}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * (1024 * 1024)
    try:
        for _ in range(40):  # 40 MiB of whitespace, no Content-Length anywhere
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    except ConnectionError:
        pass  # the server answered and closed while we were still sending
    status_line = await reader.readline()
    writer.close()

    assert b" 413 " in status_line
    assert await order_ids() == before


async def test_a_callback_with_a_non_ascii_signature_is_refused_with_401(stack) -> None:
    """compare_digest raised TypeError on a non-ASCII str: a 500 for any node key holder."""
    body = b'{"order_id": "order-web-none", "shipment_id": "order-web-none-S1", "event": "picked"}'
    headers = {
        "authorization": f"Bearer {stack.gateway.key}",
        "content-type": "application/json",
        "x-opendom-timestamp": str(int(time.time())),
        "x-opendom-signature": ("é" * 64).encode("latin-1"),
    }
    answer = await stack.http.post("/v1/callbacks/nodes/N1/events", content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "bad_signature"
    assert "hex digits" in answer.json()["message"]


# Starlette decodes headers as latin-1: b"\xb2" arrives as "²", which isdigit() accepts.
@pytest.mark.parametrize("timestamp", ["²", "1²³", "9" * 400])
async def test_a_callback_whose_timestamp_is_not_ascii_digits_is_refused_with_401(
    stack, timestamp: str
) -> None:
    """'²' passed str.isdigit() and then made int() raise, and 400 digits overflowed the
    float comparison: 500s."""
    body = b'{"order_id": "order-web-none", "shipment_id": "order-web-none-S1", "event": "picked"}'
    headers = {
        "authorization": f"Bearer {stack.gateway.key}",
        "content-type": "application/json",
        "x-opendom-timestamp": timestamp.encode("latin-1"),
        "x-opendom-signature": "0" * 64,
    }
    answer = await stack.http.post("/v1/callbacks/nodes/N1/events", content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "bad_timestamp"


async def test_a_node_key_cannot_read_availability_or_availability_events(stack, keys) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    with transaction(stack.engine) as session:
        node = issue_key(session, "a node", Role.NODE)
    sku = {"sku": net.sku("tee")}
    async with (
        stack.client_for(node) as as_node,
        stack.client_for(keys["web"]) as web,
        stack.client_for(keys["ops"]) as ops,
    ):
        node_reads = [
            await as_node.get("/v1/availability", params=sku),
            await as_node.get("/v1/availability/events"),
            await as_node.get("/v1/availability/events", params={"channel": "web"}),
        ]
        own = await web.get("/v1/availability/events", params={"channel": "web"})
        other = await web.get("/v1/availability/events", params={"channel": "amazon"})
        by_ops = await ops.get("/v1/availability/events", params={"channel": "amazon"})
        ops_availability = await ops.get("/v1/availability", params=sku)

    assert [r.status_code for r in node_reads] == [403, 403, 403], [r.text for r in node_reads]
    assert "needs" in node_reads[0].json()["message"]
    assert own.status_code == 200 and other.status_code == 403
    assert by_ops.status_code == 200 and ops_availability.status_code == 200


async def test_an_anonymous_body_is_refused_before_it_is_parsed(stack) -> None:
    """Without a key the API answers 401 from the headers: it never parses (here: could not
    parse) the body, where it used to answer its 422 for the unreadable JSON."""
    answer = await stack.http.post(
        "/v1/orders",
        content=b"{not json",
        headers={"authorization": "", "content-type": "application/json"},
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "unauthenticated"
