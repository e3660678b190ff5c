"""Promised dates: node processing (cut-off, working days) then carrier transit by distance.

The one promise code path: the optimizer dates every shipment here, and the checkout's options
are the optimizer's plans, so a date quoted at checkout and one given at allocation can differ
only by their inputs (the stock, the clock), never by the arithmetic or the calendars.

The node's clock is taken to be the clock of `now`: pass `now` in the node's local time when the
network spans time zones. Carriers are taken to move parcels Monday to Friday only.
"""

from datetime import date, datetime, timedelta
from operator import attrgetter

import numpy as np

from domain.carriers import COLLECT_CARRIER, CarrierService
from sourcing.model import ProcessingCalendar, TransitBand, TransitTable

CARRIER_WORKING_DAYS = frozenset({0, 1, 2, 3, 4})
# A calendar with no working day at all would loop forever; a year is far beyond any real gap.
MAX_DAYS_SEARCHED = 366
ONE_DAY = timedelta(days=1)


def ship_date(now: datetime, calendar: ProcessingCalendar) -> date:
    """The day the node hands the parcel over: the first working day on which work can start
    (today if before the cut-off), plus the node's processing days in working days."""
    day = now.date()
    if not _is_working_day(day, calendar) or now.hour >= calendar.cutoff_hour:
        day = next_working_day(day, calendar)
    for _ in range(calendar.processing_days):
        day = next_working_day(day, calendar)
    return day


def next_working_day(day: date, calendar: ProcessingCalendar) -> date:
    for _ in range(MAX_DAYS_SEARCHED):
        day += ONE_DAY
        if _is_working_day(day, calendar):
            return day
    raise ValueError(f"calendar has no working day within a year of {day}: {calendar}")


def add_carrier_days(day: date, days: int) -> date:
    """Transit days counted on the carrier's Monday-to-Friday week."""
    for _ in range(days):
        day += ONE_DAY
        while day.weekday() not in CARRIER_WORKING_DAYS:
            day += ONE_DAY
    return day


def transit_days(table: TransitTable, carrier: CarrierService, distance_km: float) -> int:
    """One distance, the same band as `transit_days_many` picks, without building arrays."""
    if carrier.carrier == COLLECT_CARRIER:
        return 0
    bands = _bands(table, carrier)
    return next((band.days for band in bands if distance_km <= band.max_km), bands[-1].days)


def transit_days_many(
    table: TransitTable, carrier: CarrierService, distance_km: np.ndarray
) -> np.ndarray:
    """Carrier days for many distances at once: the first band whose limit covers each."""
    if carrier.carrier == COLLECT_CARRIER:
        return np.zeros(len(distance_km), dtype=int)
    bands = _bands(table, carrier)
    limits = np.array([band.max_km for band in bands])
    days = np.array([band.days for band in bands])
    at = np.searchsorted(limits, distance_km, side="left")
    return days[np.minimum(at, len(bands) - 1)]


def promised_date(
    now: datetime,
    calendar: ProcessingCalendar,
    table: TransitTable,
    carrier: CarrierService,
    distance_km: float,
) -> date:
    return add_carrier_days(ship_date(now, calendar), transit_days(table, carrier, distance_km))


def _bands(table: TransitTable, carrier: CarrierService) -> list[TransitBand]:
    if carrier.service == "express":
        bands = table.express
    elif carrier.service == "store-transfer":
        bands = table.store_transfer
    else:
        bands = table.ground
    return sorted(bands, key=_BY_MAX_KM)


_BY_MAX_KM = attrgetter("max_km")


def _is_working_day(day: date, calendar: ProcessingCalendar) -> bool:
    return day.weekday() in calendar.working_days and day not in calendar.holidays
