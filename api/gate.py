"""Every /v1/ request is authenticated and rate limited here, before its body is read.

FastAPI parses a JSON body before the route's dependencies run, so without this an anonymous
caller could make the API parse bodies up to the size limit, and a key over its rate would
still cost a parse. The client found here is handed to `api.security.current_client` in the
request's scope, so a request is authenticated once."""

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.rate_limit import RateLimits, TokenBuckets, retry_after_header
from api.security import (
    GATE_CLIENT,
    UNAUTHENTICATED,
    UNKNOWN_KEY,
    KeyCache,
    authenticate_with,
    bearer_key,
)

API_PREFIX = "/v1/"


class ApiGate:
    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits
        self.buckets = TokenBuckets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        key = bearer_key(authorization.decode("latin-1"))  # as Starlette decodes headers
        if not key:
            await _refuse(scope, receive, send, 401, "unauthenticated", UNAUTHENTICATED)
            return
        state = scope["app"].state
        cache: KeyCache = state.key_cache
        client = cache.get(key)
        if client is None:
            # Off the event loop: waiting here for a pooled connection would stall every request.
            client = await run_in_threadpool(authenticate_with, state.engine, key)
            if client is None:
                await _refuse(scope, receive, send, 401, "unauthenticated", UNKNOWN_KEY)
                return
            cache.put(key, client)
        limit = self.limits.for_role(client.role)
        wait = self.buckets.take(client.key_id, limit)
        if wait > 0:
            retry_after = retry_after_header(wait)
            response = JSONResponse(
                status_code=429,
                content={
                    "error": "rate_limited",
                    "message": f"this key may make {limit.describe()} to this API process; "
                    f"retry in {retry_after} s",
                    "limit_per_second": limit.per_second,
                    "burst": limit.burst,
                    "retry_after_seconds": int(retry_after),
                },
                headers={"Retry-After": retry_after},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[GATE_CLIENT] = client
        await self.app(scope, receive, send)


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, error: str, message: str
) -> None:
    response = JSONResponse(status_code=status, content={"error": error, "message": message})
    await response(scope, receive, send)
