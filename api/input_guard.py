"""NUL bytes are refused (422) wherever a request carries text: path, query and body.

No field of OpenDOM holds a NUL, PostgreSQL refuses one in any text column (a DataError, which
would be a 500 wherever it reaches a write), and SQLite stores it silently. One check at the
edge covers every model, dict key and raw upload, including the ones no field validator
sees."""

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi_body import replay_body

JSON_NUL_ESCAPE = b"\\u0000"
BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def json_escapes_nul(body: bytes) -> bool:
    """A `\\u0000` escape that is one: preceded by an even number of backslashes (`\\\\u0000`
    is an escaped backslash, then the text `u0000`)."""
    at = body.find(JSON_NUL_ESCAPE)
    while at != -1:
        backslashes = 0
        while at - backslashes - 1 >= 0 and body[at - backslashes - 1] == 0x5C:
            backslashes += 1
        if backslashes % 2 == 0:
            return True
        at = body.find(JSON_NUL_ESCAPE, at + 1)
    return False


def nul_in_body(body: bytes) -> bool:
    return b"\x00" in body or json_escapes_nul(body)


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await _refuse(scope, receive, send, "the path or query")
            return
        if scope["method"] in BODILESS_METHODS:
            await self.app(scope, receive, send)
            return
        # The body is buffered here, as the framework would buffer it to parse it; its size
        # was capped outside (HttpHardening).
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if nul_in_body(b"".join(chunks)):
            await _refuse(scope, receive, send, "the body")
            return
        await self.app(scope, replay_body(messages, receive), send)


async def _refuse(scope: Scope, receive: Receive, send: Send, where: str) -> None:
    response = JSONResponse(
        status_code=422,
        content={
            "error": "nul_byte",
            "message": f"NUL bytes (\\u0000, %00) are refused; {where} has one",
        },
    )
    await response(scope, receive, send)
