"""Pull connector for a PIM (product information management system) that cannot push its
catalogue: OpenDOM pages through the PIM's product list from a cursor it keeps.

The format, a simplified form of a typical PIM export such as Akeneo's paginated product list
(`GET /api/rest/v1/products?pagination_type=search_after`), with the PIM's attributes already
mapped to OpenDOM's SKU fields by the PIM's export profile:

    GET {url}/catalogue                   the first page
    GET {url}/catalogue?cursor=<cursor>   the page after <cursor>

    200 {"items": [{"sku": "TEE-WHT-M", "name": "Organic tee, white, M",
                    "unit_price": 19.0, "weight_kg": 0.2, "length_cm": 30, "width_cm": 25,
                    "height_cm": 2, "ship_alone": false, "oversize": false, "active": true},
                   ...],
         "next_cursor": "1042",
         "has_more": true}

- Items come in the order the PIM last changed them, so a cursor marks a point in that order and
  a SKU changed again later comes back on a later page. Each item is a whole SKU specification
  (domain.configuration.SkuSpec; fields it omits take their defaults, unknown fields are refused);
  discontinuing is `"active": false`, never leaving the item out.
- `next_cursor` is opaque: where this page ended, to be sent back for the next page. With
  `has_more` false the PIM has nothing newer; the cursor is kept and asked again on the next pull
  for what changed since.
- The items are handed over as they came (validating them is services.catalogue's, which names
  a refused item by index and field); only the envelope is checked here.

Transport failures, 5xx and 429 are retried a few times (tenacity), then raised as
TransientConnectorError; other 4xx and an unreadable envelope are PermanentConnectorError."""

from typing import Any

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from connectors.errors import PermanentConnectorError, TransientConnectorError
from connectors.http import RETRYABLE_STATUS

SYSTEM = "pim"


class CataloguePage(BaseModel):
    items: list[Any]
    next_cursor: str | None = None
    has_more: bool = False


class PimConnector:
    """Synchronous: the pull runs in the housekeeping's sync activity thread and in `opendom pim
    pull`, one page after another."""

    def __init__(
        self, client: httpx.Client | None = None, attempts: int = 3, timeout_seconds: float = 30
    ) -> None:
        self._client = client or httpx.Client(timeout=timeout_seconds)
        self._attempts = attempts

    def close(self) -> None:
        self._client.close()

    def fetch_page(self, url: str, cursor: str | None) -> CataloguePage:
        """The page of the catalogue at `url` after `cursor` (None: the first page)."""
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.1, max=1.0),
            retry=retry_if_exception_type(TransientConnectorError),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._fetch_once(url, cursor)
        raise AssertionError("unreachable: tenacity reraises")

    def _fetch_once(self, url: str, cursor: str | None) -> CataloguePage:
        endpoint = f"{url.rstrip('/')}/catalogue"
        params = {"cursor": cursor} if cursor is not None else None
        try:
            response = self._client.get(endpoint, params=params)
        except httpx.TransportError as exc:
            raise TransientConnectorError(SYSTEM, f"{type(exc).__name__} on {endpoint}") from exc
        if response.status_code in RETRYABLE_STATUS:
            raise TransientConnectorError(
                SYSTEM, f"HTTP {response.status_code} on {endpoint}", response.status_code
            )
        if response.status_code >= 400:
            raise PermanentConnectorError(
                SYSTEM,
                f"HTTP {response.status_code} on {endpoint}: {response.text[:300]}",
                response.status_code,
            )
        try:
            return CataloguePage.model_validate_json(response.content)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise PermanentConnectorError(
                SYSTEM, f"not a catalogue page from {endpoint}: {where}: {first['msg']}"
            ) from exc
