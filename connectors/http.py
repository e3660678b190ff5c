"""Shared HTTP plumbing: a few short transport retries (tenacity), then a typed error.

Temporal owns retries across activity attempts; tenacity here only smooths over blips within one.
"""

from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from connectors.errors import PermanentConnectorError, TransientConnectorError

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class JsonHttpClient:
    def __init__(
        self,
        system: str,
        client: httpx.AsyncClient | None = None,
        attempts: int = 3,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.system = system
        self._client = client or httpx.AsyncClient(timeout=timeout_seconds)
        self._attempts = attempts

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(
        self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.1, max=1.0),
            retry=retry_if_exception_type(TransientConnectorError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._post_once(url, body, headers or {})
        raise AssertionError("unreachable: tenacity reraises")

    async def _post_once(
        self, url: str, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        try:
            response = await self._client.post(url, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise TransientConnectorError(self.system, f"{type(exc).__name__} on {url}") from exc
        if response.status_code in RETRYABLE_STATUS:
            raise TransientConnectorError(
                self.system, f"HTTP {response.status_code} on {url}", response.status_code
            )
        if response.status_code >= 400:
            raise PermanentConnectorError(
                self.system,
                f"HTTP {response.status_code} on {url}: {response.text[:300]}",
                response.status_code,
            )
        return response.json() if response.content else {}
