"""The pre-order option: when a cart cannot go from stock now, the first date the incoming stock
(purchase orders, transfers in transit) covers it, after the orders already waiting for it.

Pure. Per SKU, the supply the channel sees — what each node can sell now, then each open
incoming line on its expected date — is handed out in date order, first to the units the
waiting (backordered) orders still want, then to this cart: a unit promised to an order that
waits is not quoted again. Per SKU the node whose remaining supply covers the cart's quantity
and arrives first is chosen; there the goods are taken to land on their expected date after the
day's work (it starts the next working day), then the node's processing days and the carrier's
transit follow, as sourcing.promise dates every shipment. The option's date is the latest of its
shipments. A receipt that lands earlier is allocated earlier (the backorder sweep), so the date
holds unless the goods are late.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.carriers import choose_carrier_service
from domain.geo import GeoPoint, distance_km
from domain.incoming import IncomingUnits, first_day_available
from domain.orders import DeliveryMethod, DeliveryOptionCode, OrderLine
from sourcing.checkout import DeliveryOption, QuotedShipment
from sourcing.model import NodeProfile, TransitTable
from sourcing.promise import add_carrier_days, ship_date, transit_days

# The priority the checkout quotes with (allocation's default): the carrier follows distance.
_QUOTE_PRIORITY = 5


@dataclass(frozen=True, slots=True)
class IncomingAt:
    """Open incoming units of a SKU at a node, expected on a date."""

    node_id: str
    sku: str
    expected_date: dt.date
    units: int


def left_after_waiting(
    sku: str,
    now_units: Mapping[str, int],
    incoming: Sequence[IncomingAt],
    waiting: int,
    today: dt.date,
) -> tuple[dict[str, int], dict[str, list[IncomingUnits]]]:
    """What remains of a SKU's supply per node once `waiting` units (what the orders already
    waiting for it still want) are handed out first, earliest first: (units now per node,
    incoming per node by date). A late line counts from today; ties go by node id."""
    supply: list[tuple[dt.date, str, int]] = [
        (today, node_id, units) for node_id, units in now_units.items() if units > 0
    ]
    supply += [
        (max(today, i.expected_date), i.node_id, i.units)
        for i in incoming
        if i.sku == sku and i.units > 0
    ]
    supply.sort(key=lambda s: (s[0], s[1]))
    now_left: dict[str, int] = {}
    coming: dict[str, dict[dt.date, int]] = {}
    owed = max(0, waiting)
    for day, node_id, units in supply:
        taken = min(owed, units)
        owed -= taken
        units -= taken
        if units <= 0:
            continue
        if day == today:
            now_left[node_id] = now_left.get(node_id, 0) + units
        else:
            by_day = coming.setdefault(node_id, {})
            by_day[day] = by_day.get(day, 0) + units
    return now_left, {
        node_id: [IncomingUnits(date=d, units=u) for d, u in sorted(by_day.items())]
        for node_id, by_day in coming.items()
    }


def preorder_option(
    lines: Sequence[OrderLine],
    destination: GeoPoint,
    nodes: Sequence[NodeProfile],
    incoming: Sequence[IncomingAt],
    waiting: Mapping[str, int],
    now: dt.datetime,
    transit: TransitTable,
) -> DeliveryOption | None:
    """The `preorder` option for the cart, or None when the supply never covers some line, or
    covers every line now (then it is no pre-order: the stock options say what can go).

    `nodes`: the channel's candidates with their calendars and what each can sell now (as the
    checkout reads them), `now` on their clock; `incoming`: the open incoming units at the nodes
    the channel sells from; `waiting`: per SKU, the units the backordered orders still want."""
    today = now.date()
    shipping = {p.node_id: p for p in nodes if p.node.can_ship}
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    chosen: dict[str, tuple[str, dt.date, dt.date, float, str, str]] = {}
    for sku, quantity in wanted.items():
        now_units = {node_id: p.node.available.get(sku, 0) for node_id, p in shipping.items()}
        here = [i for i in incoming if i.node_id in shipping]
        now_left, coming = left_after_waiting(sku, now_units, here, waiting.get(sku, 0), today)
        best: tuple[dt.date, float, str, dt.date, dt.date, str, str] | None = None
        for node_id, profile in shipping.items():
            day = first_day_available(
                quantity, today, now_left.get(node_id, 0), coming.get(node_id, [])
            )
            if day is None:
                continue
            km = distance_km(profile.node.location, destination)
            carrier = choose_carrier_service(_QUOTE_PRIORITY, km, DeliveryMethod.HOME, False)
            calendar = profile.calendar
            # Goods landing on a later day are taken to land after that day's work: it starts
            # the next day (whatever the node's cut-off, a receipt may come in the evening).
            start = (
                now
                if day == today
                else dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), now.tzinfo)
            )
            ship_by = ship_date(start, calendar)
            arrives = add_carrier_days(ship_by, transit_days(transit, carrier, km))
            candidate = (arrives, km, node_id, day, ship_by, carrier.carrier, carrier.service)
            if best is None or candidate[:3] < best[:3]:
                best = candidate
        if best is None:
            return None
        arrives, km, node_id, day, ship_by, carrier_name, service = best
        chosen[sku] = (node_id, day, ship_by, km, carrier_name, service)
    if all(day == today for _, day, *_ in chosen.values()):
        return None
    by_node: dict[str, list[OrderLine]] = {}
    for line in lines:
        by_node.setdefault(chosen[line.sku][0], []).append(line)
    shipments = []
    for node_id, node_lines in by_node.items():
        sku = node_lines[0].sku
        _, _, ship_by, km, carrier_name, service = chosen[sku]
        ship_by = max(chosen[ln.sku][2] for ln in node_lines)
        carrier = choose_carrier_service(_QUOTE_PRIORITY, km, DeliveryMethod.HOME, False)
        shipments.append(
            QuotedShipment(
                node_id=node_id,
                node_type=str(shipping[node_id].node.node_type),
                lines=node_lines,
                distance_km=km,
                carrier=carrier_name,
                service=service,
                ship_by=ship_by,
                promised_date=add_carrier_days(ship_by, transit_days(transit, carrier, km)),
            )
        )
    shipments.sort(key=lambda s: s.node_id)
    return DeliveryOption(
        code=DeliveryOptionCode.PREORDER,
        promised_date=max(s.promised_date for s in shipments),
        shipments=shipments,
    )
