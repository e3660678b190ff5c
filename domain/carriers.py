"""Which carrier service a shipment travels with, and what a collection needs instead."""

import zlib

from pydantic import BaseModel

from domain.orders import DeliveryMethod

EXPRESS_PRIORITY = 7  # priorities 7-9 are paid express or VIP orders
LONG_HAUL_KM = 800.0
COLLECT_CARRIER = "COLLECT"


class CarrierService(BaseModel):
    carrier: str
    service: str

    @property
    def needs_label(self) -> bool:
        """Click & collect from the store's own shelves hands over a code, not a parcel."""
        return self.carrier != COLLECT_CARRIER


def choose_carrier_service(
    priority: int, distance_km: float, delivery_method: DeliveryMethod, from_pickup_store: bool
) -> CarrierService:
    if delivery_method == DeliveryMethod.PICKUP:
        if from_pickup_store:
            return CarrierService(carrier=COLLECT_CARRIER, service="collect-in-store")
        return CarrierService(carrier="SIMEX", service="store-transfer")
    if priority >= EXPRESS_PRIORITY or distance_km > LONG_HAUL_KM:
        return CarrierService(carrier="SIMEX", service="express")
    return CarrierService(carrier="SIMEX", service="ground")


def collection_code(shipment_id: str) -> str:
    """The code the customer shows at the store; derived, so replays produce the same one."""
    return f"COL-{zlib.crc32(shipment_id.encode()) % 1_000_000:06d}"
