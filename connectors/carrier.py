"""Carrier client: buys shipping labels. The shipment id is the idempotency key, so a retried
purchase returns the same label instead of paying twice."""

from pydantic import BaseModel

from connectors.http import JsonHttpClient
from domain.geo import GeoPoint
from domain.orders import Address


class LabelRequest(BaseModel):
    order_id: str
    shipment_id: str
    carrier: str
    service: str
    ship_from: GeoPoint
    ship_to: Address
    units: int


class Label(BaseModel):
    label_id: str
    tracking_number: str
    carrier: str
    service: str


class CarrierConnector:
    def __init__(self, http: JsonHttpClient, base_url: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")

    async def buy_label(self, request: LabelRequest) -> Label:
        payload = await self._http.post(
            f"{self._base_url}/carrier/v1/labels",
            request.model_dump(mode="json"),
            headers={"Idempotency-Key": request.shipment_id},
        )
        return Label.model_validate(payload)
