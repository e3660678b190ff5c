"""The catalogue on the real stack: SKUs put and read over HTTP, a PIM's push applied once and
all or nothing, inactive SKUs refused by order intake and checkout, and the housekeeping pulling a
PIM (the simulated one, over real HTTP) without a bad item stopping it."""

import asyncio
import uuid

import httpx
from sqlmodel import Session

from ledger.availability_cache import NETWORK_REFRESH_SECONDS
from ledger.config_audit import changes_of
from ledger.db import transaction
from ledger.tables import FeedSource
from security.keys import issue_key
from security.roles import Role
from services.catalogue import set_catalogue_source
from tests.support.housekeeping_runs import run_housekeeping
from tests.support.network import CUSTOMER, build_network
from tests.support.orders_api import order_payload

NODES = {"dc": {"type": "warehouse", "km_east": 10}}


def _prefix() -> str:
    return uuid.uuid4().hex[:8]


def _item(sku: str, **fields: object) -> dict:
    return {"sku": sku, "name": f"Item {sku}", "weight_kg": 0.4, **fields}


def _audit(stack, sku: str) -> list[str]:  # type: ignore[no-untyped-def]
    with Session(stack.engine) as session:
        return [c.action for c in changes_of(session, "sku", sku)]


async def test_a_pushed_event_sent_twice_is_applied_once(stack) -> None:
    p = _prefix()
    push = {"event_id": f"ev-{p}", "items": [_item(f"A-{p}"), _item(f"B-{p}", unit_price=9)]}

    first = await stack.http.post(f"/v1/feeds/pim-{p}/catalogue", json=push)
    push["items"][1]["unit_price"] = 99  # the PIM resent the message; the first one stands
    second = await stack.http.post(f"/v1/feeds/pim-{p}/catalogue", json=push)

    assert first.status_code == 200
    assert first.json() == {
        "created": [f"A-{p}", f"B-{p}"],
        "updated": [],
        "unchanged": 0,
        "replayed": False,
    }
    assert second.json() == {"created": [], "updated": [], "unchanged": 0, "replayed": True}
    assert (await stack.http.get(f"/v1/skus/B-{p}")).json()["unit_price"] == 9
    assert _audit(stack, f"B-{p}") == ["create"]


async def test_a_push_with_a_bad_item_names_it_and_applies_nothing(stack) -> None:
    p = _prefix()
    items = [_item(f"A-{p}"), _item(f"B-{p}"), _item(f"C-{p}", weight_kg=-1)]

    refused = await stack.http.post(
        f"/v1/feeds/pim-{p}/catalogue", json={"event_id": f"ev-{p}", "items": items}
    )

    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_sku_specs"
    assert (
        "items[2].weight_kg: Input should be greater than or equal to 0"
        in (refused.json()["message"])
    )
    assert (await stack.http.get(f"/v1/skus/A-{p}")).status_code == 404
    # Refused, so not recorded: the corrected message under the same event id is applied.
    items[2]["weight_kg"] = 1
    fixed = await stack.http.post(
        f"/v1/feeds/pim-{p}/catalogue", json={"event_id": f"ev-{p}", "items": items}
    )
    assert len(fixed.json()["created"]) == 3


async def test_putting_the_same_sku_twice_records_one_change(stack) -> None:
    p = _prefix()
    body = {"name": "Rain jacket", "unit_price": 149, "weight_kg": 0.9, "oversize": True}

    created = await stack.http.put(f"/v1/skus/JACKET-{p}", json=body)
    again = await stack.http.put(f"/v1/skus/JACKET-{p}", json={**body, "sku": f"JACKET-{p}"})
    shown = await stack.http.get(f"/v1/skus/JACKET-{p}")

    assert (created.status_code, created.json()["outcome"]) == (201, "created")
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    assert shown.json()["oversize"] is True and shown.json()["weight_kg"] == 0.9
    assert _audit(stack, f"JACKET-{p}") == ["create"]
    with Session(stack.engine) as session:
        [entry] = changes_of(session, "sku", f"JACKET-{p}")
    assert entry.actor == f"key:{stack.admin.key_id} tests"


async def test_a_put_naming_another_sku_or_a_bad_field_is_refused(stack) -> None:
    p = _prefix()

    other = await stack.http.put(f"/v1/skus/A-{p}", json={"sku": f"B-{p}", "name": "A"})
    bad = await stack.http.put(f"/v1/skus/A-{p}", json={"name": "A", "length_cm": -3})
    missing = await stack.http.get(f"/v1/skus/A-{p}")

    assert other.status_code == 422 and f"the body names B-{p}" in other.json()["message"]
    assert bad.status_code == 422 and "length_cm" in bad.json()["message"]
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_sku"


async def test_skus_are_listed_a_page_at_a_time_and_by_activity(stack) -> None:
    p = _prefix()
    items = [_item(f"L-{p}-{i}", active=i != 1) for i in range(3)]
    await stack.http.post(f"/v1/feeds/pim-{p}/catalogue", json={"event_id": p, "items": items})

    first = (await stack.http.get("/v1/skus", params={"after": f"L-{p}", "limit": 2})).json()
    second = (
        await stack.http.get("/v1/skus", params={"after": first["next_after"], "limit": 2})
    ).json()
    inactive = (
        await stack.http.get("/v1/skus", params={"after": f"L-{p}", "active": False})
    ).json()

    assert [s["sku"] for s in first["items"]] == [f"L-{p}-0", f"L-{p}-1"]
    assert second["items"][0]["sku"] == f"L-{p}-2"
    assert f"L-{p}-1" in [s["sku"] for s in inactive["items"]]
    assert all(not s["active"] for s in inactive["items"])


async def test_only_ops_and_admin_keys_change_the_catalogue(stack) -> None:
    p = _prefix()
    with transaction(stack.engine) as session:
        channel = issue_key(session, f"shop-{p}", Role.CHANNEL, channel="web")
    async with stack.client_for(channel) as shop:
        pushed = await shop.post(
            f"/v1/feeds/pim-{p}/catalogue", json={"event_id": p, "items": [_item(f"A-{p}")]}
        )
        put = await shop.put(f"/v1/skus/A-{p}", json={"name": "A"})

    assert pushed.status_code == 403 and put.status_code == 403


async def _deactivate(stack, sku: str) -> None:  # type: ignore[no-untyped-def]
    response = await stack.http.put(f"/v1/skus/{sku}", json={"name": "Retired", "active": False})
    assert response.json()["outcome"] == "updated"


async def test_an_inactive_sku_is_refused_by_order_intake(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 5})
    await _deactivate(stack, net.sku("tee"))

    response = await stack.http.post("/v1/orders", json=order_payload(net, [("tee", 1)]))

    assert response.status_code == 422
    assert response.json()["error"] == "inactive_sku"
    assert f"lines.sku: inactive {net.sku('tee')}" in response.json()["message"]


async def test_an_inactive_sku_gets_no_checkout_quote_or_hold(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 5})
    await _deactivate(stack, net.sku("tee"))
    cart = {
        "channel": "web",
        "destination": CUSTOMER,
        "lines": [{"line_no": 1, "sku": net.sku("tee"), "quantity": 1}],
        "hold": True,
    }

    response = await stack.http.post("/v1/checkout/check", json=cart)

    assert response.status_code == 422
    assert "inactive" in response.json()["message"] and net.sku("tee") in response.json()["message"]
    assert (await stack.http.get(f"/v1/inventory/{net.sku('tee')}")).json()[0]["held"] == 0


async def test_an_inactive_sku_in_the_availability_cache_gets_no_quote(stack) -> None:
    net = build_network(stack.engine, stack.simulator_url, NODES, {("dc", "tee"): 5})
    cart = {
        "channel": "web",
        "destination": CUSTOMER,
        "lines": [{"line_no": 1, "sku": net.sku("tee"), "quantity": 1}],
    }
    # Wait for the cache's network snapshot (re-read every NETWORK_REFRESH_SECONDS) to have the
    # new node, so the quote below comes from the cache.
    await asyncio.sleep(NETWORK_REFRESH_SECONDS + 1)
    assert (await stack.http.post("/v1/checkout/check", json=cart)).status_code == 200
    await _deactivate(stack, net.sku("tee"))

    assert await _status_within(stack, cart, lambda status: status != 200) == 422


async def _status_within(stack, cart: dict, done, seconds: float = 10) -> int:  # type: ignore[no-untyped-def]
    """The checkout's status once `done(status)`, or the last one after `seconds` (a deadline,
    not a timing claim)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while True:
        status = (await stack.http.post("/v1/checkout/check", json=cart)).status_code
        if done(status) or loop.time() > until:
            return status
        await asyncio.sleep(0.2)


async def test_the_housekeeping_pulls_a_pim_and_a_bad_page_stops_only_that_pim(stack) -> None:
    p = _prefix()
    good, bad = f"pim-ok-{p}", f"pim-bad-{p}"
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        await sim.put(
            f"/sim/pim/{good}/items",
            params={"page_size": 2},
            json=[_item(f"G{i}-{p}") for i in range(3)],
        )
        await sim.put(
            f"/sim/pim/{bad}/items",
            params={"page_size": 2},
            json=[_item(f"X0-{p}"), _item(f"X1-{p}"), _item(f"X2-{p}", name=""), _item(f"X3-{p}")],
        )
    with transaction(stack.engine) as session:
        for name in (good, bad):
            set_catalogue_source(session, name, f"{stack.simulator_url}/pim/{name}", "cli:tests")

    # Raises if the run fails: the bad page must be refused, not raised.
    await run_housekeeping(stack)

    skus = {s: (await stack.http.get(f"/v1/skus/{s}")).status_code for s in (
        f"G0-{p}", f"G2-{p}", f"X1-{p}", f"X2-{p}", f"X3-{p}"
    )}  # fmt: skip
    assert skus == {f"G0-{p}": 200, f"G2-{p}": 200, f"X1-{p}": 200, f"X2-{p}": 404, f"X3-{p}": 404}
    with Session(stack.engine) as session:
        assert session.get(FeedSource, bad).cursor == "2"  # type: ignore[union-attr]
        assert session.get(FeedSource, good).cursor == "3"  # type: ignore[union-attr]
    with Session(stack.engine) as session:
        [entry] = changes_of(session, "sku", f"G0-{p}")
    assert entry.actor == f"pim:{good}"

    await run_housekeeping(stack)  # asks for the refused page again, and refuses it again
    with transaction(stack.engine) as session:
        assert session.get(FeedSource, bad).cursor == "2"  # type: ignore[union-attr]
        for name in (good, bad):  # later tests' housekeeping runs need not pull these
            session.get(FeedSource, name).enabled = False  # type: ignore[union-attr]
