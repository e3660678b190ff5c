"""Callbacks say only what their sender may say, and an event that arrives after the order's
workflow has closed is kept in the read model, never dropped (audit M9, M2 ways 3 and 4)."""

import asyncio
import time

from ledger.db import transaction
from ledger.tables import OrderView
from tests.support.network import build_network
from tests.support.orders_api import order_payload

NODES = {"a": {"km_east": 5}}


async def _submit(stack, payload: dict) -> str:
    response = await stack.http.post("/v1/orders", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


async def _wait_for_shipment(stack, order_id: str, status: str) -> dict:
    for _ in range(600):
        order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
        if order.get("shipments") and order["shipments"][0]["status"] == status:
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(f"{order_id}'s shipment never reached {status}: {order}")


async def test_a_carrier_cannot_post_a_rejection(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    await stack.set_node_mode(net.node("a"), "picks_only")  # labelled, never shipped
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    order = await _wait_for_shipment(stack, order_id, "LABELLED")
    shipment = order["shipments"][0]
    scan = {
        "order_id": order_id,
        "shipment_id": shipment["shipment_id"],
        "tracking_number": shipment["tracking_number"],
        "event": "rejected",
    }

    response = await stack.signed_post(f"/v1/callbacks/carriers/{shipment['carrier']}/events", scan)

    assert response.status_code == 422, response.text
    assert "rejected" in response.json()["message"]
    after = (await stack.http.get(f"/v1/orders/{order_id}")).json()
    assert after["shipments"][0]["status"] == "LABELLED"
    assert not any("rejected" in e["detail"] for e in after["timeline"])


async def test_a_node_event_for_a_shipment_the_order_does_not_have_is_refused(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    await stack.set_node_mode(net.node("a"), "accept_only")
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    await _wait_for_shipment(stack, order_id, "ACCEPTED")
    path = f"/v1/callbacks/nodes/{net.node('a')}/events"

    answers = [
        await stack.signed_post(
            path, {"order_id": order_id, "shipment_id": f"{order_id}-X{n}", "event": "picked"}
        )
        for n in range(5)
    ]

    assert [a.status_code for a in answers] == [404] * 5, answers[0].text
    assert answers[0].json()["error"] == "shipment_not_found"
    await asyncio.sleep(0.5)  # a signal that got through would be on the timeline by now
    timeline = (await stack.http.get(f"/v1/orders/{order_id}")).json()["timeline"]
    assert not any("unknown shipment" in e["detail"] for e in timeline)


async def test_a_node_delivered_for_a_completed_order_reaches_the_read_model(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    order = await stack.wait_for_status(order_id, "COMPLETED")
    shipment_id = order["shipments"][0]["shipment_id"]
    for _ in range(100):  # the simulated carrier's scan must not be the one that delivers it
        order = (await stack.http.get(f"/v1/orders/{order_id}")).json()
        if order["shipments"][0]["status"] == "DELIVERED":
            break
        await asyncio.sleep(0.1)
    # A store confirming the collection: after the workflow, and after the carrier's scan too.
    delivered = {
        "order_id": order_id,
        "shipment_id": shipment_id,
        "event": "delivered",
        "event_id": f"{shipment_id}:collected",
    }

    response = await stack.signed_post(f"/v1/callbacks/nodes/{net.node('a')}/events", delivered)

    assert response.status_code == 202, response.text
    assert response.json()["routed_to"] == "read_model"
    after = (await stack.http.get(f"/v1/orders/{order_id}")).json()
    assert after["shipments"][0]["status"] == "DELIVERED"


async def test_a_delivered_the_closed_workflow_cannot_take_is_recorded_in_the_read_model(
    stack,
) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    await stack.set_node_mode(net.node("a"), "accept_only")
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    order = await _wait_for_shipment(stack, order_id, "ACCEPTED")
    shipment_id = order["shipments"][0]["shipment_id"]
    # The read model still says IN_FULFILLMENT; the workflow is gone (terminated by ops).
    await stack.client.get_workflow_handle(order_id).terminate("test: workflow closes early")
    delivered = {"order_id": order_id, "shipment_id": shipment_id, "event": "delivered"}

    response = await stack.signed_post(f"/v1/callbacks/nodes/{net.node('a')}/events", delivered)

    assert response.status_code == 202, response.text
    assert response.json()["routed_to"] == "read_model"
    after = (await stack.http.get(f"/v1/orders/{order_id}")).json()
    assert after["shipments"][0]["status"] == "DELIVERED"


async def test_another_event_for_a_closed_order_is_kept_on_its_timeline(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    order = await stack.wait_for_status(order_id, "COMPLETED")
    shipment_id = order["shipments"][0]["shipment_id"]
    late = {
        "order_id": order_id,
        "shipment_id": shipment_id,
        "event": "rejected",
        "reason": "parcel found damaged at the dock",
    }

    response = await stack.signed_post(f"/v1/callbacks/nodes/{net.node('a')}/events", late)

    assert response.status_code == 202, response.text
    assert response.json()["routed_to"] == "read_model"
    after = (await stack.http.get(f"/v1/orders/{order_id}")).json()
    [entry] = [e for e in after["timeline"] if e["event"] == "late_event"]
    assert shipment_id in entry["detail"] and "rejected" in entry["detail"]
    assert "parcel found damaged" in entry["detail"]
    assert after["status"] == "COMPLETED"


async def test_a_resent_event_the_workflow_has_taken_adds_nothing_to_its_history(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    await stack.set_node_mode(net.node("a"), "accept_only")
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    order = await _wait_for_shipment(stack, order_id, "ACCEPTED")
    accepted = {
        "order_id": order_id,
        "shipment_id": order["shipments"][0]["shipment_id"],
        "event": "accepted",
    }
    handle = stack.client.get_workflow_handle(order_id)
    before = len((await handle.fetch_history()).events)

    # A partner's sender retrying for ever, each attempt signed anew (no replay to refuse).
    answers = []
    for moment in range(5):
        answers.append(
            await stack.signed_post(
                f"/v1/callbacks/nodes/{net.node('a')}/events",
                accepted,
                timestamp=int(time.time()) + moment,
            )
        )

    assert [a.status_code for a in answers] == [202] * 5, answers[0].text
    assert {a.json()["routed_to"] for a in answers} == {"duplicate"}
    assert len((await handle.fetch_history()).events) == before


async def test_an_event_the_read_model_has_not_caught_up_with_reaches_the_workflow(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("a", "tee"): 5})
    await stack.set_node_mode(net.node("a"), "silent")
    order_id = await _submit(stack, order_payload(net, [("tee", 1)]))
    order = await _wait_for_shipment(stack, order_id, "RELEASED")
    shipment_id = order["shipments"][0]["shipment_id"]
    # As the read model stands when a fast node answers before the release's projection commits.
    with transaction(stack.engine) as session:
        view = session.get(OrderView, order_id)
        view.document = {**view.document, "shipments": []}
        session.add(view)
    accepted = {"order_id": order_id, "shipment_id": shipment_id, "event": "accepted"}

    response = await stack.signed_post(f"/v1/callbacks/nodes/{net.node('a')}/events", accepted)

    assert response.status_code == 202, response.text
    assert response.json()["routed_to"] == "workflow"
    await _wait_for_shipment(stack, order_id, "ACCEPTED")
