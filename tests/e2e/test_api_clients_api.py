"""/v1/api-clients over real HTTP on the real stack, and the `opendom init` / `opendom keys`
commands as subprocesses: a key issued works, a revoked one is refused (at once by the process
that revoked it and by a fresh API process), a rotated secret replaces the old one."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from security.keys import IssuedKey
from stack.launcher import uvicorn_args
from stack.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _issued(body: dict) -> IssuedKey:
    return IssuedKey(key_id=body["key_id"], key=body["key"], signing_secret=body["signing_secret"])


async def test_an_admin_issues_a_channel_key_that_works_and_is_listed_without_secrets(
    stack,
) -> None:
    created = await stack.http.post(
        "/v1/api-clients", json={"name": "web shop", "role": "channel", "channel": "web"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith(f"odk_{body['key_id']}_") and body["signing_secret"] is None
    assert body["created_by"] == f"key:{stack.admin.key_id} tests"
    async with stack.client_for(_issued(body)) as web:
        assert (await web.get("/v1/orders")).status_code == 200
        assert (await web.get("/v1/api-clients")).status_code == 403  # admin only

    listed = await stack.http.get("/v1/api-clients")
    assert listed.status_code == 200
    mine = next(c for c in listed.json() if c["key_id"] == body["key_id"])
    assert mine["channel"] == "web" and mine["active"] is True
    assert not {"key", "key_hash", "signing_secret"} & set(mine)
    assert body["key"] not in listed.text


async def test_a_key_revoked_through_the_api_is_refused_at_once_and_revoking_again_is_a_no_op(
    stack,
) -> None:
    created = await stack.http.post("/v1/api-clients", json={"name": "ops", "role": "ops"})
    key = _issued(created.json())
    async with stack.client_for(key) as ops:
        assert (await ops.get("/v1/nodes")).status_code == 200  # now in the key cache
        revoked = await stack.http.post(f"/v1/api-clients/{key.key_id}/revoke")
        again = await stack.http.post(f"/v1/api-clients/{key.key_id}/revoke")
        refused = await ops.get("/v1/nodes")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert refused.status_code == 401


async def test_refusals_name_the_field_or_the_unknown_key(stack) -> None:
    no_channel = await stack.http.post(
        "/v1/api-clients", json={"name": "web shop", "role": "channel"}
    )
    unknown_node = await stack.http.post(
        "/v1/api-clients", json={"name": "wms", "role": "node", "node_id": "nowhere"}
    )
    unknown_key = await stack.http.post("/v1/api-clients/0000000000000000/revoke")
    no_secret = await stack.http.post("/v1/api-clients", json={"name": "desk", "role": "support"})
    rotate_support = await stack.http.post(
        f"/v1/api-clients/{no_secret.json()['key_id']}/rotate-secret"
    )
    assert no_channel.status_code == 422 and no_channel.json()["message"].startswith("channel:")
    assert unknown_node.status_code == 422 and unknown_node.json()["field"] == "node_id"
    assert unknown_key.status_code == 404 and "key_id" in unknown_key.json()["message"]
    assert rotate_support.status_code == 422 and rotate_support.json()["message"].startswith(
        "role:"
    )


async def test_a_rotated_secret_refuses_callbacks_signed_with_the_old_one_at_once(stack) -> None:
    created = await stack.http.post("/v1/api-clients", json={"name": "gateway", "role": "node"})
    key = _issued(created.json())
    scan = {"order_id": "no-such-order", "shipment_id": "s", "tracking_number": "t"}
    path = "/v1/callbacks/carriers/ups/events"
    before = await stack.signed_post(path, scan, key=key)  # signed fine: the order is unknown
    rotated = await stack.http.post(f"/v1/api-clients/{key.key_id}/rotate-secret")
    new_key = IssuedKey(key.key_id, key.key, rotated.json()["signing_secret"])
    old = await stack.signed_post(path, scan, key=key)
    new = await stack.signed_post(path, scan, key=new_key)
    assert before.status_code == 404
    assert rotated.status_code == 200 and rotated.json()["signing_secret"] != key.signing_secret
    assert old.status_code == 401 and old.json()["error"] == "bad_signature"
    assert new.status_code == 404  # past the signature check


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "OPENDOM_MODE": "embedded"}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


@contextmanager
def fresh_api(stack) -> Iterator[str]:
    """Another API process on the stack's database, in production mode (the database is
    migrated, so it starts without migrating)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": stack.settings.database_url,
        "OPENDOM_TEMPORAL_ADDRESS": stack.settings.temporal_address,
        "OPENDOM_MODE": "production",
    }
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        uvicorn_args("api.app:create_app", url), env=env, cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{url}/healthz"):
            assert process.poll() is None, process.stderr.read() if process.stderr else b""
            assert time.monotonic() < deadline, "the fresh API did not start"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def test_a_key_revoked_by_the_cli_is_refused_by_a_fresh_api_process_at_once(stack) -> None:
    created = await stack.http.post("/v1/api-clients", json={"name": "ops 2", "role": "ops"})
    key, live = _issued(created.json()), stack.admin
    async with stack.client_for(key) as ops:
        assert (await ops.get("/v1/nodes")).status_code == 200

    revoked = _cli("keys", "revoke", key.key_id, "--json", database_url=stack.settings.database_url)
    again = _cli("keys", "revoke", key.key_id, database_url=stack.settings.database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["changed"] is True
    assert again.returncode == 0 and "nothing changed" in again.stdout

    with fresh_api(stack) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as fresh:
            refused = await fresh.get("/v1/nodes", headers={"authorization": f"Bearer {key.key}"})
            accepted = await fresh.get("/v1/nodes", headers={"authorization": f"Bearer {live.key}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    assert accepted.status_code == 200
