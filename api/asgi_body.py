"""Middlewares that read a request's body before the app does hand it on with this."""

from starlette.types import Message, Receive


def replay_body(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives the app the body messages already read, then the live ones."""
    pending = list(reversed(messages))

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
