"""Pull connector for systems that must be polled for stock deltas (ERP, WMS without push)."""

from datetime import datetime

import httpx
from pydantic import BaseModel, ValidationError

from connectors.errors import PermanentConnectorError, TransientConnectorError


class PulledDelta(BaseModel):
    event_id: str
    node_id: str
    sku: str
    delta: int
    as_of: datetime


class DeltaPage(BaseModel):
    deltas: list[PulledDelta]
    next_cursor: str | None


class ErpFeedConnector:
    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(timeout=30)

    async def fetch_deltas(self, url: str, cursor: str | None) -> DeltaPage:
        try:
            response = await self._client.get(url, params={"after": cursor} if cursor else None)
        except httpx.TransportError as exc:
            raise TransientConnectorError("erp", f"{type(exc).__name__} on {url}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientConnectorError(
                "erp", f"HTTP {response.status_code}", response.status_code
            )
        if response.status_code >= 400:
            raise PermanentConnectorError("erp", response.text[:300], response.status_code)
        try:
            return DeltaPage.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            # Asking again gets the same page: as permanent as a 4xx until someone fixes it.
            raise PermanentConnectorError(
                "erp", f"not a page of deltas: {str(exc)[:300]}", response.status_code
            ) from exc
