"""The ASGI fast path for `POST /v1/checkout/check` (api/checkout_fast_path.py) answers exactly as
the FastAPI route does: every request below goes to an app with the fast path and to the same app
without it, on the same real SQLite database, and status, body and headers must be identical."""

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from api.checkout_fast_path import CheckoutFastPath
from config import load_settings
from ledger.db import create_schema, make_engine, transaction
from security.keys import issue_key
from security.roles import Role
from tests.integration.test_checkout_fast_path import CHANNELS, SKUS, seed_network

PATH = "/v1/checkout/check"
COMPARED_HEADERS = (
    "content-type",
    "content-length",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cache-control",
    "content-security-policy",
)


class Counting:
    """Counts the checkout checks that reach the FastAPI app behind the fast path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.checks = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            self.checks += 1
        await self.app(scope, receive, send)


def started(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(500):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the availability cache did not load")
        yield client


@pytest.fixture
def database(tmp_path: Path) -> tuple[str, dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'checkout.db'}"
    engine = make_engine(url)
    create_schema(engine)
    seed_network(engine, random.Random(5))
    with transaction(engine) as session:
        keys = {
            "web": issue_key(session, "web", Role.CHANNEL, channel="web").key,
            "shared": issue_key(session, "shared", Role.CHANNEL, channel="shared").key,
            "admin": issue_key(session, "admin", Role.ADMIN).key,
            "support": issue_key(session, "support", Role.SUPPORT).key,
            "ops": issue_key(session, "ops", Role.OPS).key,
        }
    engine.dispose()
    return url, keys


@pytest.fixture
def clients(
    database: tuple[str, dict[str, str]],
) -> Iterator[tuple[TestClient, TestClient, Counting]]:
    url, _ = database
    settings = load_settings(database_url=url, temporal_address="127.0.0.1:1")
    fast_app = create_app(settings, checkout_fast_path=True)
    plain_app = create_app(settings, checkout_fast_path=False)
    fast_gen, plain_gen = started(fast_app), started(plain_app)
    fast, plain = next(fast_gen), next(plain_gen)
    # The middleware stack is built at startup: put a counter behind the fast path.
    layer = fast_app.middleware_stack
    while not isinstance(layer, CheckoutFastPath):
        layer = layer.app  # type: ignore[union-attr]
    counter = layer.app = Counting(layer.app)
    try:
        yield fast, plain, counter
    finally:
        for gen in (fast_gen, plain_gen):
            next(gen, None)


def compare(
    fast: TestClient, plain: TestClient, method: str = "POST", path: str = PATH, **kwargs: object
) -> tuple[int, bytes]:
    answers = []
    for client in (fast, plain):
        sent = dict(kwargs)
        if callable(sent.get("content")):  # a fresh stream for each
            sent["content"] = sent["content"]()  # type: ignore[operator]
        response = client.request(method, path, **sent)  # type: ignore[arg-type]
        headers = {name: response.headers.get(name) for name in COMPARED_HEADERS}
        answers.append((response.status_code, response.content, headers))
    assert answers[0] == answers[1], kwargs
    return answers[0][0], answers[0][1]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def cart(rng: random.Random, channel: str, **extra: object) -> dict[str, object]:
    picked = rng.sample(SKUS, rng.randint(1, 3))
    return {
        "channel": channel,
        "destination": {"lat": 40 + rng.uniform(-0.3, 1.3), "lon": -75 + rng.uniform(-0.3, 1.3)},
        "lines": [
            {"line_no": i + 1, "sku": s, "quantity": rng.choice((1, 1, 2, 3, 40))}
            for i, s in enumerate(picked)
        ],
        **extra,
    }


def test_answers_are_identical_with_and_without_the_fast_path(
    database: tuple[str, dict[str, str]], clients: tuple[TestClient, TestClient, Counting]
) -> None:
    _, keys = database
    fast, plain, counter = clients
    rng = random.Random(21)
    # The first call per key fills the key cache (through the app); then the fast path can answer.
    for name in ("web", "shared", "admin", "support", "ops"):
        compare(fast, plain, json=cart(rng, "web"), headers=auth(keys[name]))

    before = counter.checks
    answered = 0
    for _ in range(120):
        key = rng.choice(("web", "shared", "admin"))
        channel = key if key != "admin" else rng.choice(CHANNELS)
        status, body = compare(fast, plain, json=cart(rng, channel), headers=auth(keys[key]))
        assert status == 200, body
        answered += 1
    # Every one of those was answered at the ASGI level, none by the route.
    assert counter.checks == before
    assert answered == 120

    web = auth(keys["web"])
    valid = cart(rng, "web")
    # Refusals and everything the fast path leaves to the app: same status, same body.
    expected = [
        (401, {"json": valid}),  # no key
        (401, {"json": valid, "headers": auth("odk_nope_nope")}),  # unknown key
        (401, {"json": valid, "headers": {"Authorization": f"Basic {keys['web']}"}}),
        (403, {"json": valid, "headers": auth(keys["support"])}),  # wrong role
        (403, {"json": valid, "headers": auth(keys["ops"])}),
        (403, {"json": cart(rng, "shared"), "headers": web}),  # another channel
        (422, {"json": {**valid, "lines": []}, "headers": web}),
        (
            422,
            {
                "json": {**valid, "lines": [{"line_no": 1, "sku": "S1", "quantity": 0}]},
                "headers": web,
            },
        ),
        (422, {"json": {**valid, "surprise": 1}, "headers": web}),
        (422, {"json": {**valid, "destination": {"lat": 91, "lon": 0}}, "headers": web}),
        (422, {"json": {"channel": "web"}, "headers": web}),
        (422, {"json": [], "headers": web}),
        (422, {"json": None, "headers": web}),
        (422, {"content": b"{not json", "headers": {**web, "content-type": "application/json"}}),
        (422, {"content": b"", "headers": {**web, "content-type": "application/json"}}),
        (422, {"content": json.dumps(valid), "headers": {**web, "content-type": "text/plain"}}),
        (422, {"content": json.dumps(valid).encode(), "headers": web}),  # no content type
        (
            422,
            {
                "json": {**valid, "lines": [{"line_no": 1, "sku": "NOPE", "quantity": 1}]},
                "headers": web,
            },
        ),  # an unknown SKU: the database path names it
        (422, {"json": {**valid, "hold": True, "hold_ttl_seconds": 0}, "headers": web}),
        (401, {"json": {"channel": "web"}}),  # invalid and unauthenticated
        (403, {"json": {"channel": "web"}, "headers": auth(keys["support"])}),
        (
            200,
            {"json": valid, "headers": {**web, "content-type": "application/json; charset=utf-8"}},
        ),
        (200, {"json": valid, "headers": {**web, "content-type": "application/merge-patch+json"}}),
        (200, {"json": valid, "headers": {"Authorization": f"bearer   {keys['web']}  "}}),
        # Parsed by json.loads in the route and by pydantic's JSON parser in the fast path.
        (
            200,
            {
                "content": json.dumps(valid).replace('"quantity": 1', '"quantity": 1.0'),
                "headers": {**web, "content-type": "application/json"},
            },
        ),
        (
            200,
            {
                "json": {**valid, "hold": "false", "destination": {"lat": "40.5", "lon": -74}},
                "headers": web,
            },
        ),
        (
            200,
            {
                "content": b"\xef\xbb\xbf" + json.dumps(valid).encode(),
                "headers": {**web, "content-type": "application/json"},
            },
        ),
        (
            400,
            {
                "content": b'{"channel": "w\xffb"}',
                "headers": {**web, "content-type": "application/json"},
            },
        ),
        (  # chunked, no Content-Length: left to the app (and HttpHardening's counting)
            200,
            {
                "content": lambda: iter([json.dumps(valid).encode()]),
                "headers": {**web, "content-type": "application/json"},
            },
        ),
        (405, {"method": "GET", "headers": web}),
        (307, {"path": PATH + "/", "json": valid, "headers": web, "follow_redirects": False}),
    ]
    for status, kwargs in expected:
        got, body = compare(fast, plain, **kwargs)  # type: ignore[arg-type]
        assert got == status, (kwargs, body)

    # A duplicated key in the body: both parsers keep the last value.
    payload = '{"channel": "shared", "channel": "web", ' + json.dumps(valid)[1:].replace(
        '"channel": "web", ', ""
    )
    status, _ = compare(
        fast, plain, content=payload, headers={**web, "content-type": "application/json"}
    )
    assert status == 200


def test_a_hold_takes_the_database_path_in_both(
    database: tuple[str, dict[str, str]], clients: tuple[TestClient, TestClient, Counting]
) -> None:
    _, keys = database
    fast, plain, counter = clients
    web = auth(keys["web"])
    body = cart(random.Random(4), "web", hold=True)
    body["lines"] = [{"line_no": 1, "sku": "S1", "quantity": 1}]
    plain.post(PATH, json=cart(random.Random(1), "web"), headers=web)  # warm the key cache
    fast.post(PATH, json=cart(random.Random(1), "web"), headers=web)

    before = counter.checks
    answers = [client.post(PATH, json=body, headers=web) for client in (fast, plain)]

    assert counter.checks == before + 1  # handed to the route
    assert [a.status_code for a in answers] == [200, 200]
    held = [a.json() for a in answers]
    for answer in held:  # each placed its own hold
        assert answer.pop("hold").keys() == {"hold_id", "expires_at", "option"}
    # The second saw the first's hold, so only the units may differ.
    assert [ln["available"] for ln in held[0]["lines"]] == [
        ln["available"] for ln in held[1]["lines"]
    ]
    assert [o["code"] for o in held[0]["options"]] == [o["code"] for o in held[1]["options"]]
