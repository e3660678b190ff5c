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


class PulledIncomingLine(BaseModel):
    """A purchase order or transfer line on the ERP's page, as POST /v1/feeds/{source}/incoming
    takes it. Typed but not bounded, and its date left as the ERP wrote it: an unknown kind, a
    quantity out of range or a date that is no date is refused by name with that line
    (services.feeds), never by refusing the page, which would hold every later delta of the
    source behind one line."""

    event_id: str
    action: str = "upsert"
    kind: str
    reference: str
    line: int
    node_id: str | None = None
    sku: str | None = None
    quantity: int | None = None
    expected_date: str | None = None
    from_node_id: str | None = None


class DeltaPage(BaseModel):
    deltas: list[PulledDelta]
    # ERPs that know their purchase orders and transfers list them with the deltas; older
    # pages have none.
    incoming: list[PulledIncomingLine] = []
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
