"""How activities hand a connector's errors to Temporal: a permanent one (the other system
refused) becomes a non-retryable ApplicationError of type ConnectorRefused, so the workflow can
react (for example reallocate); a transient one propagates and Temporal retries it with backoff."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.exceptions import ApplicationError

from connectors.errors import PermanentConnectorError

T = TypeVar("T")


async def permanent_errors_are_final(call: Callable[[], Awaitable[T]]) -> T:
    """The call's result; its permanent connector error as a final ConnectorRefused."""
    try:
        return await call()
    except PermanentConnectorError as exc:
        raise connector_refused(exc) from exc


def connector_refused(exc: PermanentConnectorError) -> ApplicationError:
    """The non-retryable ApplicationError a permanent connector error is reported as."""
    return ApplicationError(
        str(exc),
        {"system": exc.system, "status_code": exc.status_code},
        type="ConnectorRefused",
        non_retryable=True,
    )
