"""Promised dates: when a node can hand a parcel over, plus how long the carrier takes.

Nodes work Monday to Friday; an order that reaches a node after its cut-off is processed the next
working day. Transit days grow with distance and shrink with the service level.
"""

from datetime import date, datetime, timedelta

CUTOFF_HOUR_UTC = 14
TRANSIT_BANDS_KM = ((150, 1), (800, 2), (2000, 3))  # up to N km: days by ground
LONGEST_GROUND_DAYS = 5


def next_working_day(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def handover_day(now: datetime, cutoff_hour: int = CUTOFF_HOUR_UTC) -> date:
    """The working day a node hands the parcel to the carrier."""
    today = now.date()
    if today.weekday() < 5 and now.hour < cutoff_hour:
        return today
    return next_working_day(today)


def transit_days(distance_km: float, service: str) -> int:
    ground = next((days for limit, days in TRANSIT_BANDS_KM if distance_km <= limit), None)
    ground = ground if ground is not None else LONGEST_GROUND_DAYS
    if service == "express":
        return max(1, ground - 1)
    return ground


def promised_date(now: datetime, distance_km: float, service: str) -> date:
    """Delivery date promised to the customer: handover, then transit in working days."""
    day = handover_day(now)
    for _ in range(transit_days(distance_km, service)):
        day = next_working_day(day)
    return day


def collection_ready_date(now: datetime) -> date:
    """Click & collect from a store's shelf: ready the same working day before cut-off."""
    return handover_day(now)
