"""Which carrier service a shipment travels with."""

from pydantic import BaseModel

from domain.orders import DeliveryMethod

EXPRESS_PRIORITY = 7  # priorities 7-9 are paid express or VIP orders
LONG_HAUL_KM = 800.0


class CarrierService(BaseModel):
    carrier: str
    service: str


def choose_carrier_service(
    priority: int, distance_km: float, delivery_method: DeliveryMethod
) -> CarrierService:
    if delivery_method == DeliveryMethod.PICKUP:
        return CarrierService(carrier="SIMEX", service="store-transfer")
    if priority >= EXPRESS_PRIORITY or distance_km > LONG_HAUL_KM:
        return CarrierService(carrier="SIMEX", service="express")
    return CarrierService(carrier="SIMEX", service="ground")
