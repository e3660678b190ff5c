"""The configuration audit trail (ledger.tables.ConfigChange): one entry per changed entity, with
who, when and each changed field's value before and after."""

from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from ledger.tables import ConfigChange

Changes = dict[str, list[Any]]  # field -> [before, after]


def _plain(value: Any) -> Any:
    """JSON-safe, and the same for values that compare equal (an enum and its string)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def field_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Changes:
    """The fields of `after` whose value differs from `before` (None: a new entity, every field)."""
    changes: Changes = {}
    for name, value in after.items():
        old = None if before is None else _plain(before.get(name))
        new = _plain(value)
        if before is None or old != new:
            changes[name] = [old, new]
    return changes


def record_change(
    session: Session, entity: str, entity_id: str, action: str, actor: str, changes: Changes
) -> None:
    session.add(
        ConfigChange(
            entity=entity, entity_id=entity_id, action=action, actor=actor, changes=changes
        )
    )


def changes_of(
    session: Session, entity: str | None = None, entity_id: str | None = None, limit: int = 100
) -> list[ConfigChange]:
    """Newest first."""
    query = select(ConfigChange).order_by(col(ConfigChange.id).desc()).limit(limit)
    if entity is not None:
        query = query.where(col(ConfigChange.entity) == entity)
    if entity_id is not None:
        query = query.where(col(ConfigChange.entity_id) == entity_id)
    return list(session.exec(query).all())


def one_configuration_writer(session: Session) -> None:
    """Configuration is read, diffed, then inserted: two writers of the same new id (a retried
    PUT racing its original, two imports) would both read "absent" and one would fail on the
    key. On PostgreSQL they take turns on a transaction-level advisory lock, so the second
    reads the first's rows and finds nothing to do; SQLite already has one writer at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(hashtext('opendom.configuration'))"))
