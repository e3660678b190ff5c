"""Which orders share a parcel (issue 14, item 6): the one rule the ledger's parcel groups
(services.parcels) and the sourcing benchmark's "parcels per order" both apply.

Orders of one customer to one address, on one channel with a consolidation window, allocated to
one node and shipped on one carrier service, share a parcel when the later one is allocated before the group's window closes. A
group's window is counted from its first member (it opens the group): every member is released
to the node when it closes, so a group never waits longer than one window. Pickup orders are
never grouped (the customer collects each order's code at the store).
"""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.orders import Address, DeliveryMethod

# A window above this is refused by the channel's configuration: a parcel held longer than a
# week is a customer's complaint, not a saving.
MAX_CONSOLIDATION_WINDOW_SECONDS = 7 * 24 * 3600.0


def _plain(text: str) -> str:
    """Case, accents, punctuation and spacing removed: `1, Place  Bellecour` = `1 place bellecour`."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", ascii_only).split())


def address_key(address: Address) -> str:
    """The address as a parcel is addressed, normalised: two spellings of one door are one key.
    The recipient's name is not part of it (one customer, one door)."""
    postal = re.sub(r"\s+", "", address.postal_code).upper()
    return "|".join((address.country.upper(), postal, _plain(address.city), _plain(address.line1)))[
        :300
    ]


@dataclass(frozen=True)
class ParcelKey:
    """What two shipments must share to travel in one parcel: the parcel travels on one carrier
    service (its one label), so a fast order never waits for, nor ships as, an economy one.
    None: a shipment whose service was not given (a join recorded before the service was)."""

    channel: str
    customer_id: str
    address_key: str
    node_id: str
    carrier: str | None = None
    service: str | None = None


def groupable(delivery_method: DeliveryMethod | str, window_seconds: float) -> bool:
    """A shipment may wait for others: a home delivery on a channel with a window."""
    return window_seconds > 0 and DeliveryMethod(delivery_method) == DeliveryMethod.HOME


def closes_at(opened_at: datetime, window_seconds: float) -> datetime:
    """When a group opened at `opened_at` stops taking members and is released."""
    return opened_at + timedelta(seconds=window_seconds)


def still_open(group_closes_at: datetime, now: datetime) -> bool:
    """A shipment allocated at `now` joins the group: its window has not closed."""
    return now < group_closes_at


@dataclass(frozen=True)
class Allocated:
    """One shipment as the rule sees it (the benchmark's stream, or a join)."""

    key: ParcelKey
    at: datetime
    window_seconds: float
    delivery_method: DeliveryMethod | str = DeliveryMethod.HOME


def assign_parcels(shipments: Iterable[Allocated]) -> list[int]:
    """The parcel number of each shipment, taken in allocation order: a shipment joins the
    open group of its key, or opens one (a new number). What services.parcels does, one
    shipment at a time, in the database."""
    open_groups: dict[ParcelKey, tuple[int, datetime]] = {}
    numbers: list[int] = []
    parcels = 0
    for shipment in shipments:
        if groupable(shipment.delivery_method, shipment.window_seconds):
            group = open_groups.get(shipment.key)
            if group is not None and still_open(group[1], shipment.at):
                numbers.append(group[0])
                continue
        number = parcels
        parcels += 1
        numbers.append(number)
        if groupable(shipment.delivery_method, shipment.window_seconds):
            open_groups[shipment.key] = (number, closes_at(shipment.at, shipment.window_seconds))
    return numbers
