"""Configuring the network over real HTTP: nodes, channels and carrier services by PUT, audited,
refused whole when a field is bad, and taking effect in sourcing without restarting the API."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from ledger.db import transaction
from security.keys import issue_key
from security.roles import Role
from tests.support.network import CUSTOMER, build_network

DEADLINE_SECONDS = 30.0  # the API's cache reloads the network every 5 s
T = TypeVar("T")
# A channel of its own, with no pool: every node's stock counts (other tests may pool "web").
CHECKOUT_CHANNEL = f"web-{uuid.uuid4().hex[:8]}"


def _node_body(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Lyon warehouse",
        "node_type": "warehouse",
        "lat": CUSTOMER["lat"],
        "lon": CUSTOMER["lon"] + 0.1,
        "connector_kind": "simulator",
        "timezone": "Europe/Paris",
        "holidays": ["2026-12-25"],
    } | fields


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    loop = asyncio.get_running_loop()
    until = loop.time() + DEADLINE_SECONDS
    last = await probe()
    while not done(last):
        if loop.time() > until:
            raise AssertionError(f"{what} never happened; last seen {last}")
        await asyncio.sleep(0.2)
        last = await probe()
    return last


async def _units_at_checkout(stack, sku: str) -> int | None:  # type: ignore[no-untyped-def]
    """What the checkout check (the API's in-memory cache) counts of the SKU."""
    cart = {
        "channel": CHECKOUT_CHANNEL,
        "destination": CUSTOMER,
        "lines": [{"line_no": 1, "sku": sku, "quantity": 1}],
    }
    response = await stack.http.post("/v1/checkout/check", json=cart)
    assert response.status_code == 200, response.text
    return response.json()["lines"][0]["units_available"]


async def _changes(stack, entity: str, entity_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    params = {"entity": entity, "entity_id": entity_id}
    response = await stack.http.get("/v1/config-changes", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_node_put_twice_is_created_once_and_audited_once(stack) -> None:
    node_id = _new_id("WH-LYON")

    created = await stack.http.put(f"/v1/nodes/{node_id}", json=_node_body())
    again = await stack.http.put(f"/v1/nodes/{node_id}", json=_node_body(node_id=node_id))
    shown = await stack.http.get(f"/v1/nodes/{node_id}")

    assert created.status_code == 201, created.text
    assert created.json()["outcome"] == "created"
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    node = shown.json()
    assert (node["status"], node["active"], node["timezone"]) == ("up", True, "Europe/Paris")
    assert node["system_url"] is None and node["holidays"] == ["2026-12-25"]
    [change] = await _changes(stack, "node", node_id)
    assert change["action"] == "create"
    assert change["actor"] == f"key:{stack.admin.key_id} tests"


async def test_an_update_records_only_the_changed_fields_with_the_caller(stack) -> None:
    node_id = _new_id("WH")
    await stack.http.put(f"/v1/nodes/{node_id}", json=_node_body())

    updated = await stack.http.put(
        f"/v1/nodes/{node_id}", json=_node_body(cutoff_time="16:00", daily_capacity=250)
    )

    assert (updated.status_code, updated.json()["outcome"]) == (200, "updated")
    latest = (await _changes(stack, "node", node_id))[0]
    assert latest["action"] == "update"
    assert latest["changes"] == {"cutoff_time": ["14:00", "16:00"], "daily_capacity": [1000, 250]}


async def test_a_bad_field_is_a_422_naming_it_and_writes_nothing(stack) -> None:
    node_id = _new_id("WH")
    bad = {
        "node_type": "shop",
        "timezone": "Mars/Base",
        "cutoff_time": "25:00",
        "credential_ref": "sk_live_51HxY2eZvKYlo2C0aBcDeFgHiJkLmNoP",
    }

    for field, value in bad.items():
        response = await stack.http.put(f"/v1/nodes/{node_id}", json=_node_body(**{field: value}))
        assert response.status_code == 422, (field, response.text)
        assert [d["field"] for d in response.json()["detail"]] == [field], response.text
    mismatch = await stack.http.put(f"/v1/nodes/{node_id}", json=_node_body(node_id="OTHER"))

    assert mismatch.status_code == 422 and "node_id" in mismatch.json()["message"]
    assert (await stack.http.get(f"/v1/nodes/{node_id}")).status_code == 404
    assert await _changes(stack, "node", node_id) == []


async def test_a_channel_key_may_not_configure_the_network(stack) -> None:
    with transaction(stack.engine) as session:
        shop = issue_key(session, "web shop", Role.CHANNEL, channel="web")

    async with stack.client_for(shop) as http:
        put = await http.put(f"/v1/nodes/{_new_id('WH')}", json=_node_body())
        changes = await http.get("/v1/config-changes")

    assert (put.status_code, changes.status_code) == (403, 403)


async def test_a_deactivated_node_leaves_sourcing_and_coming_up_does_not_bring_it_back(
    stack,
) -> None:
    nodes = {"dc": {"type": "warehouse", "km_east": 30}, "wh": {"type": "warehouse"}}
    net = build_network(
        stack.engine, stack.simulator_url, nodes, {("dc", "tee"): 4, ("wh", "tee"): 6}
    )
    sku, dc, wh = net.sku("tee"), net.node("dc"), net.node("wh")
    await _eventually(lambda: _units_at_checkout(stack, sku), lambda n: n == 10, "stock counted")

    deactivated = await stack.http.post(f"/v1/nodes/{dc}/deactivate", json={"reason": "closing"})
    await _eventually(
        lambda: _units_at_checkout(stack, sku), lambda n: n == 6, "deactivated stock left"
    )
    up = await stack.http.put(f"/v1/nodes/{dc}/status", json={"status": "up", "reason": "fixed"})
    # The other node going down shows that the cache has reloaded the network since.
    await stack.http.put(f"/v1/nodes/{wh}/status", json={"status": "down", "reason": "test"})
    await _eventually(lambda: _units_at_checkout(stack, sku), lambda n: n == 0, "wh down")

    assert deactivated.status_code == 200, deactivated.text
    assert (deactivated.json()["deactivated"], deactivated.json()["active"]) == (True, False)
    assert up.status_code == 200, up.text
    shown = (await stack.http.get(f"/v1/nodes/{dc}")).json()
    assert (shown["status"], shown["enabled"], shown["active"]) == ("up", False, False)
    availability = await stack.http.get("/v1/availability", params={"sku": sku})
    assert availability.json()[0]["total"] == 0


async def test_a_node_created_over_the_api_becomes_a_candidate_without_a_restart(stack) -> None:
    net = build_network(
        stack.engine, stack.simulator_url, {"far": {"km_east": 300}}, {("far", "tee"): 1}
    )
    sku, node_id = net.sku("tee"), _new_id("WH-NEW")
    await _eventually(lambda: _units_at_checkout(stack, sku), lambda n: n == 1, "stock counted")

    created = await stack.http.put(f"/v1/nodes/{node_id}", json=_node_body())
    delta = {
        "event_id": f"{node_id}-opening",
        "node_id": node_id,
        "sku": sku,
        "delta": 7,
        "as_of": datetime.now(UTC).isoformat(),
    }
    fed = await stack.http.post("/v1/feeds/erp/deltas", json={"deltas": [delta]})
    counted = await _eventually(
        lambda: _units_at_checkout(stack, sku), lambda n: n == 8, "new node's stock counted"
    )

    assert created.status_code == 201 and fed.status_code == 200, fed.text
    assert counted == 8


async def test_a_channel_with_its_pool_round_trips_and_refuses_unknown_nodes(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, {"dc": {}}, {("dc", "tee"): 1})
    channel = _new_id("b2b")
    body = {"name": "B2B portal", "channel_type": "b2b", "pool_node_ids": [net.node("dc")]}

    created = await stack.http.put(f"/v1/channels/{channel}", json=body)
    shown = await stack.http.get(f"/v1/channels/{channel}")
    listed = await stack.http.get("/v1/channels")
    unknown = await stack.http.put(
        f"/v1/channels/{channel}", json=body | {"pool_node_ids": ["NOWHERE"]}
    )

    assert created.status_code == 201, created.text
    assert shown.json()["pool_node_ids"] == [net.node("dc")]
    assert channel in {c["channel"] for c in listed.json()}
    assert unknown.status_code == 422 and unknown.json()["field"] == "pool_node_ids"
    assert "NOWHERE" in unknown.json()["message"]
    assert (await stack.http.get(f"/v1/channels/{channel}")).json()["pool_node_ids"] == [
        net.node("dc")
    ]


async def test_a_carrier_service_is_put_by_carrier_and_service(stack) -> None:
    carrier = _new_id("DPD")
    path = f"/v1/carriers/{carrier}/services/classic"
    body = {"name": "DPD Classic", "transit_bands": [{"max_km": 300, "days": 1}]}

    created = await stack.http.put(path, json=body)
    slower = await stack.http.put(path, json=body | {"transit_bands": [{"max_km": 300, "days": 2}]})
    descending = await stack.http.put(
        path,
        json=body | {"transit_bands": [{"max_km": 900, "days": 2}, {"max_km": 300, "days": 1}]},
    )
    listed = await stack.http.get("/v1/carriers")

    assert (created.status_code, slower.json()["outcome"]) == (201, "updated")
    assert descending.status_code == 422 and "transit_bands" in descending.json()["message"]
    [mine] = [c for c in listed.json() if c["carrier"] == carrier]
    assert mine["transit_bands"] == [{"max_km": 300.0, "days": 2}]
    assert len(await _changes(stack, "carrier", f"{carrier}/classic")) == 2


async def test_the_audit_trail_is_newest_first_and_limited(stack) -> None:
    node_id = _new_id("WH")
    for capacity in (10, 20, 30):
        await stack.http.put(f"/v1/nodes/{node_id}", json=_node_body(daily_capacity=capacity))

    response = await stack.http.get(
        "/v1/config-changes", params={"entity": "node", "entity_id": node_id, "limit": 2}
    )
    too_many = await stack.http.get("/v1/config-changes", params={"limit": 100_000})

    assert [c["changes"]["daily_capacity"][1] for c in response.json()] == [30, 20]
    assert too_many.status_code == 422
