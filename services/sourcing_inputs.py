"""What sourcing reads besides stock, the same for the checkout and the allocation: each
candidate node's working calendar, and `now` on the nodes' clock.

The database path reads the calendar columns of the candidates' node rows; the checkout's cache
path passes the same columns from the availability cache. Both then build the profiles here, so a
quote and an allocation made at the same instant date their shipments alike."""

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from domain.network import CandidateNode
from ledger.catalogue import CHUNK
from ledger.tables import Node
from sourcing.model import DEFAULT_CALENDAR, NodeProfile, ProcessingCalendar

# working days, holidays (ISO dates), cut-off "HH:MM", time zone, processing days
CalendarColumns = tuple[list[int], list[str], str, str, int]

# Calendars by their stored columns, shared between nodes that work the same way: the optimizer
# works out a ship date once per calendar object. Bounded: cleared when it grows past this.
_CALENDARS: dict[tuple[object, ...], ProcessingCalendar] = {}
MAX_CALENDARS = 10_000
_CALENDAR_COLUMNS = (
    col(Node.node_id),
    col(Node.working_days),
    col(Node.holidays),
    col(Node.cutoff_time),
    col(Node.timezone),
    col(Node.processing_days),
)


def calendar_columns(session: Session, node_ids: Sequence[str]) -> dict[str, CalendarColumns]:
    columns: dict[str, CalendarColumns] = {}
    ids = list(node_ids)
    for start in range(0, len(ids), CHUNK):
        rows = session.exec(
            select(*_CALENDAR_COLUMNS).where(col(Node.node_id).in_(ids[start : start + CHUNK]))
        )
        for node_id, working_days, holidays, cutoff_time, timezone, processing_days in rows:
            columns[node_id] = (working_days, holidays, cutoff_time, timezone, processing_days)
    return columns


def with_calendars(
    session: Session, candidates: Sequence[CandidateNode], now: datetime
) -> tuple[list[NodeProfile], datetime]:
    """Each candidate with its node's working calendar (one query), and `now` on the nodes'
    clock: see `profiles_with_calendars`."""
    columns = calendar_columns(session, [c.node_id for c in candidates])
    return profiles_with_calendars(candidates, columns, now)


def profiles_with_calendars(
    candidates: Sequence[CandidateNode], columns: Mapping[str, CalendarColumns], now: datetime
) -> tuple[list[NodeProfile], datetime]:
    """Each candidate with its calendar, and `now` on the nodes' clock (sourcing.promise reads
    the cut-off and the day from `now`).

    The optimizer applies one `now` to every calendar: when the candidates' time zones keep one
    clock at this instant (Paris, Berlin and Rome do), `now` is given in it and every cut-off is
    exact; when they do not (a network across the US), in UTC, each cut-off then read as UTC."""
    profiles = []
    zones: set[str] = set()
    for candidate in candidates:
        profile = NodeProfile.of(candidate)
        found = columns.get(candidate.node_id)
        if found is not None:
            working_days, holidays, cutoff_time, timezone, processing_days = found
            zones.add(timezone)
            calendar = _calendar(working_days, holidays, cutoff_time, processing_days)
            if calendar is not DEFAULT_CALENDAR:
                profile = profile.model_copy(update={"calendar": calendar})
        profiles.append(profile)
    tzs = {ZoneInfo(zone) for zone in zones}
    if len({now.astimezone(zone).utcoffset() for zone in tzs}) == 1:
        now = now.astimezone(tzs.pop())
    return profiles, now


def _calendar(
    working_days: list[int], holidays: list[str], cutoff_time: str, processing_days: int
) -> ProcessingCalendar:
    key = (tuple(working_days), tuple(holidays), cutoff_time, processing_days)
    calendar = _CALENDARS.get(key)
    if calendar is None:
        if len(_CALENDARS) >= MAX_CALENDARS:
            _CALENDARS.clear()
        calendar = ProcessingCalendar(
            # Whole hours: a 14:30 cut-off counts from 14:00, so a promise is never earlier
            # than the node can keep.
            cutoff_hour=int(cutoff_time.split(":")[0]),
            working_days=working_days,
            holidays=[date.fromisoformat(day) for day in holidays],
            processing_days=processing_days,
        )
        if calendar == DEFAULT_CALENDAR:
            calendar = DEFAULT_CALENDAR
        _CALENDARS[key] = calendar
    return calendar
