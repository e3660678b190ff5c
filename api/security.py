"""Who may do what. Every /v1 call carries `Authorization: Bearer <api key>`; a key has one role:

- channel: submits and reads its own channel's orders, checks out, holds stock for its channel
- support: reads every order; cancels, retries, reallocates
- ops: administers nodes, inventory, feeds and channel pools
- node: posts callbacks for its own node (a key without a node is a gateway for all nodes),
  each signed with HMAC-SHA256 over `timestamp.body` and refused when old or replayed
- admin: everything
"""

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError
from ledger.tables import ApiClient, CallbackSignature
from security.keys import authenticate, is_active
from security.roles import Role
from security.signatures import SIGNATURE_MAX_AGE_SECONDS, signature_is_valid

SIGNATURE_HEADER = "x-opendom-signature"
TIMESTAMP_HEADER = "x-opendom-timestamp"
# How long an API process trusts a key it has authenticated without asking the database again
# (the checkout hot path). The bound on how long a key revoked elsewhere (`opendom keys revoke`,
# another API process) keeps working here; the process that revokes a key forgets it at once,
# and a process that never saw it refuses it at once. Callbacks read the key's signing secret
# and revocation fresh every time (verify_callback).
KEY_CACHE_SECONDS = 5.0
# Seconds since the epoch: ten digits until 2286; more is a malformed header, not a time.
TIMESTAMP_MAX_DIGITS = 12
SIGNATURE_HEX_LENGTH = 64  # HMAC-SHA256, hex
# Where api.gate leaves the client it authenticated, in the request's scope state.
GATE_CLIENT = "opendom_api_client"
UNAUTHENTICATED = "send your API key as 'Authorization: Bearer <key>'"
UNKNOWN_KEY = "unknown or revoked API key"


class KeyCache:
    """Recently authenticated keys, so the checkout hot path does not query for every call.
    A key revoked by another process keeps working here for at most KEY_CACHE_SECONDS."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[ApiClient, float]] = {}

    def get(self, key: str) -> ApiClient | None:
        entry = self._entries.get(key)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, key: str, client: ApiClient) -> None:
        self._entries[key] = (client, time.monotonic() + KEY_CACHE_SECONDS)

    def forget(self, key_id: str) -> None:
        """After this process revoked the key or rotated its secret."""
        for key in [k for k, (c, _) in self._entries.items() if c.key_id == key_id]:
            self._entries.pop(key, None)


def bearer_key(header: str) -> str | None:
    """The key in an `Authorization: Bearer <key>` header's value; None if it is not one."""
    if not header.lower().startswith("bearer "):
        return None
    return header[7:].strip()


def role_allows(client: ApiClient, roles: Iterable[Role]) -> bool:
    return client.role == Role.ADMIN or client.role in roles


async def current_client(request: Request) -> ApiClient:
    gated: ApiClient | None = request.scope.get("state", {}).get(GATE_CLIENT)
    if gated is not None:  # api.gate authenticated this request before its body was read
        return gated
    key = bearer_key(request.headers.get("authorization", ""))
    if not key:
        raise ApiError(401, "unauthenticated", UNAUTHENTICATED)
    cache: KeyCache = request.app.state.key_cache
    client = cache.get(key)
    if client is None:
        # Off the event loop: waiting here for a pooled connection would stall every request,
        # including the ones that hold the connections.
        client = await run_in_threadpool(authenticate_with, request.app.state.engine, key)
        if client is None:
            raise ApiError(401, "unauthenticated", UNKNOWN_KEY)
        cache.put(key, client)
    return client


def authenticate_with(engine: Engine, key: str) -> ApiClient | None:
    with Session(engine, expire_on_commit=False) as session:
        return authenticate(session, key)


def actor_of(client: ApiClient) -> str:
    """How the audit trail names a caller (ledger ConfigChange.actor holds 120 characters)."""
    return f"key:{client.key_id} {client.name}"[:120]


def require(*roles: Role) -> Callable[[Request], Awaitable[ApiClient]]:
    async def check(request: Request) -> ApiClient:
        client = await current_client(request)
        if not role_allows(client, roles):
            allowed = ", ".join(sorted(roles))
            raise ApiError(
                403, "forbidden", f"a {client.role} key cannot do this (needs {allowed})"
            )
        return client

    return check


ChannelOrAdmin = Annotated[ApiClient, Depends(require(Role.CHANNEL))]
# Availability is a selling channel's (its own channel: channel_of) and ops' (any); node keys
# post callbacks and have no business reading what each channel can sell.
AvailabilityReader = Annotated[ApiClient, Depends(require(Role.CHANNEL, Role.OPS))]
OrderReader = Annotated[ApiClient, Depends(require(Role.CHANNEL, Role.SUPPORT, Role.OPS))]
Support = Annotated[ApiClient, Depends(require(Role.SUPPORT))]
Ops = Annotated[ApiClient, Depends(require(Role.OPS))]
NodeCaller = Annotated[ApiClient, Depends(require(Role.NODE))]
Admin = Annotated[ApiClient, Depends(require(Role.ADMIN))]


def channel_of(client: ApiClient, asked: str | None) -> str | None:
    """A channel key acts for its own channel whatever it asks; others may name any."""
    if client.role == Role.CHANNEL:
        if asked is not None and asked != client.channel:
            raise ApiError(403, "forbidden", f"this key acts for channel {client.channel} only")
        return client.channel
    return asked


def may_read_order(client: ApiClient, order_channel: str) -> bool:
    return client.role != Role.CHANNEL or client.channel == order_channel


async def verify_callback(request: Request, client: ApiClient, node_id: str | None) -> str:
    """The caller speaks for this node, signed the exact body recently, and was not accepted
    before. Returns the signature, to be remembered once the callback has been handled (so a
    callback that failed here can be retried with the same signature)."""
    if node_id is not None and client.node_id is not None and client.node_id != node_id:
        raise ApiError(403, "forbidden", f"this key speaks for node {client.node_id} only")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not signature:
        raise ApiError(
            401, "unsigned_callback", f"callbacks need {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
        )
    # ASCII digits only: str.isdigit() also accepts '²' or '٣', which int() then refuses.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= TIMESTAMP_MAX_DIGITS):
        raise ApiError(
            401, "bad_timestamp", f"{TIMESTAMP_HEADER} must be seconds since the epoch, in digits"
        )
    if not _is_hex_digest(signature):
        raise ApiError(
            401,
            "bad_signature",
            f"{SIGNATURE_HEADER} must be the HMAC-SHA256 of timestamp.body, "
            f"{SIGNATURE_HEX_LENGTH} hex digits",
        )
    if abs(time.time() - int(timestamp)) > SIGNATURE_MAX_AGE_SECONDS:
        raise ApiError(
            401, "stale_callback", "the callback's timestamp is too old or in the future"
        )
    body = await request.body()
    # Off the event loop: a pool checkout or query here would stall every request.
    await run_in_threadpool(
        _check_signature, request.app.state.engine, client, timestamp, body, signature
    )
    return signature


def _is_hex_digest(value: str) -> bool:
    return (
        len(value) == SIGNATURE_HEX_LENGTH
        and value.isascii()
        and all(c in "0123456789abcdefABCDEF" for c in value)
    )


def _check_signature(
    engine: Engine, client: ApiClient, timestamp: str, body: bytes, signature: str
) -> None:
    with Session(engine) as session:
        # The secret as it is now, not as cached: a rotated secret stops verifying, and a revoked
        # key stops calling back, the moment the change commits.
        current = session.get(ApiClient, client.key_id)
        if current is None or not is_active(current):
            raise ApiError(401, "unauthenticated", "unknown or revoked API key")
        if not current.signing_secret or not signature_is_valid(
            current.signing_secret, timestamp, body, signature
        ):
            raise ApiError(401, "bad_signature", "the callback's signature does not match its body")
        if session.get(CallbackSignature, signature) is not None:
            raise ApiError(409, "replayed_callback", "this exact callback was already received")


async def remember_callback(request: Request, signature: str) -> None:
    # A write may queue behind others for SQLite's lock: never on the event loop. Every
    # callback writes one; concurrent ones share a transaction (ledger.group_commit).
    await run_in_threadpool(request.app.state.signatures.submit, signature)


SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
]
API_HEADERS = [  # on /v1/ responses as well
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'"),
]


class HttpHardening:
    """Refuses bodies over the limit (Settings.max_body_bytes; by Content-Length before any
    is read, or counted as a chunked body arrives) and adds the security headers.

    Pure ASGI rather than `@app.middleware("http")` (Starlette's BaseHTTPMiddleware), which
    runs every request through extra tasks and memory streams and cost more per request than a
    cached checkout check itself."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _too_large(scope, receive, send, limit)
            return
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # Chunked: no length to trust up front, so count what arrives.
            receive = _capped(receive, limit)
        extra = (
            SECURITY_HEADERS + API_HEADERS if scope["path"].startswith("/v1/") else SECURITY_HEADERS
        )

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    headers[name] = value
            await send(message)

        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_hardened(message)

        try:
            await self.app(scope, receive, send_tracked)
        except _BodyTooLarge:
            if started:
                raise
            await _too_large(scope, receive, send_hardened, limit)


class _BodyTooLarge(HTTPException):
    """An HTTPException so the framework's body parsing passes it on instead of calling the
    body unreadable (400)."""

    error = "too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large_message(limit))


def _too_large_message(limit: int) -> str:
    return f"bodies are limited to {limit} bytes"


def _capped(receive: Receive, limit: int) -> Receive:
    received = 0

    async def capped() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _BodyTooLarge(limit)
        return message

    return capped


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = JSONResponse(
        status_code=413,
        content={"error": "too_large", "message": _too_large_message(limit), "limit_bytes": limit},
    )
    await response(scope, receive, send)


def install_http_hardening(app: FastAPI, max_body_bytes: int) -> None:
    app.add_middleware(HttpHardening, max_body_bytes=max_body_bytes)
