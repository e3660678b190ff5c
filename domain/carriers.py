"""Which carrier service a shipment travels with, and what a collection needs instead."""

import zlib
from random import Random

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
    """The code the customer shows at the store, as orders started before release 2026-12 derive
    it (guessable from the order number: kept only so their histories replay)."""
    return f"COL-{zlib.crc32(shipment_id.encode()) % 1_000_000:06d}"


# No 0/O, 1/I/L: read aloud at a counter. 31^8 codes: ~40 bits, no guessing, no collisions.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def secret_collection_code(rng: Random) -> str:
    """The code the customer shows at the store, drawn from `rng` (the workflow's seeded random,
    so a replay draws the same one): it cannot be computed from anything the customer sees."""
    return "COL-" + "".join(rng.choice(_CODE_ALPHABET) for _ in range(8))
