"""`POST /v1/checkout/check` without a hold, answered at the ASGI level.

The checkout check is the API's hot path, and for a cached answer FastAPI's routing, dependency
solving and Request/Response objects cost more than the check itself. This component answers
exactly the requests whose answer is certain to be the FastAPI route's, computing it with the
route's own function (`answer_from_cache`), and hands every other request, untouched, to the app:

- the key must be in the `KeyCache` and allowed to check out, the same rules as
  `require(Role.CHANNEL)` and `channel_of`; a cache miss or any refusal is left to the app, so
  401/403 (and their order relative to 422) are the app's own;
- the body must have a Content-Length (so the body limit was already enforced by
  `HttpHardening`, outside this component), be declared `application/json`, and validate as
  `CheckoutCheck`; otherwise the app re-reads the same body and answers its own 422;
- no hold, the cache ready and every SKU in it; otherwise the app takes the database path.

The FastAPI route stays registered: it documents the endpoint (OpenAPI) and answers whatever is
handed on. Installed just inside `HttpHardening`, so the security headers apply to both.
"""

from datetime import UTC, datetime

from pydantic import ValidationError
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi_body import replay_body
from api.errors import ApiError
from api.routes.availability import answer_from_cache
from api.schemas import CheckoutCheck, CheckoutResult
from api.security import KeyCache, bearer_key, channel_of, role_allows
from ledger.tables import ApiClient
from security.roles import Role

PATH = "/v1/checkout/check"
_ROLES = (Role.CHANNEL,)  # as the route's `ChannelOrAdmin` (admin is always allowed)


class CheckoutFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("root_path")  # mounted: leave routing to the framework
        ):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        authorization = content_type = length = None
        for name, value in scope["headers"]:
            # The first of each, as Starlette's `Headers.get` reads them.
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"content-length" and length is None:
                length = value
        client = _client(authorization, state.key_cache)
        if client is None or length is None or not _is_json(content_type):
            await self.app(scope, receive, send)
            return

        messages, body = await _read_body(receive)
        answer = None if body is None else _answer(body, client, state)
        if answer is None:
            # The app reads the same messages again and answers as if nothing had been read.
            await self.app(scope, replay_body(messages, receive), send)
            return
        payload = CheckoutResult.__pydantic_serializer__.to_json(answer)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                # As the route's `Response(..., media_type="application/json")` sends them.
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _client(authorization: bytes | None, keys: KeyCache) -> ApiClient | None:
    """The caller, if its key is cached and may check out; None leaves the decision to the app."""
    if authorization is None:
        return None
    key = bearer_key(authorization.decode("latin-1"))  # Starlette decodes headers as latin-1
    if key is None:
        return None
    client = keys.get(key)
    if client is None or not role_allows(client, _ROLES):
        return None
    return client


def _is_json(content_type: bytes | None) -> bool:
    """Only the plain media type: FastAPI's own rules (parameters, `+json` subtypes, a missing
    header refused as not JSON) stay with FastAPI."""
    return content_type is not None and content_type.strip().lower() == b"application/json"


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message received, and the whole body (None if the client went away first)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _answer(body: bytes, client: ApiClient, state: State) -> CheckoutResult | None:
    try:
        request = CheckoutCheck.model_validate_json(body)
        channel_of(client, request.channel)
    except (ValidationError, ApiError):
        return None
    return answer_from_cache(state.availability_cache, request, datetime.now(UTC))
