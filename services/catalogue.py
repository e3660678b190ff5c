"""The catalogue as units of work: apply SKU specifications (the API, `opendom sku put`, a PIM's
push or pull, the bulk import), read them back, and refuse SKUs that are no longer sold.

Applying is set-based, for a PIM's whole catalogue in one call: the existing rows of the batch's
SKUs are read in chunks, compared in Python, and only new and changed SKUs are written (one bulk
INSERT, one bulk UPDATE, one bulk INSERT of their audit entries). A SKU whose specification is
unchanged costs no write and no audit entry, so a PIM may send its whole catalogue every time.

A batch is all or nothing: every item is validated first (`parse_sku_specs`, which names each
refused item by its index and field) and nothing is applied if one is refused.

Deactivating is applying a spec with `active: false`: the SKU stays known (stock feeds keep
applying to it) but no new order or checkout quote may use it (`refuse_unsellable_skus`).

A PIM that cannot push is pulled (`pull_catalogue`), page by page from the cursor kept on its
FeedSource row (kind `catalogue`): each page and the moved cursor commit together. A page with a
refused item applies nothing and leaves the cursor where it was, so no item is ever skipped; the
pull stops there for that source, says why, and the next pull asks for the same page again.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import Engine, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.configuration import Applied, SkuSpec
from domain.errors import DomainError, UnknownReference
from ledger.catalogue import CHUNK, sku_activity
from ledger.config_audit import Changes, field_changes, one_configuration_writer, record_change
from ledger.db import transaction
from ledger.feeds import advance_cursor
from ledger.tables import ConfigChange, FeedEvent, FeedSource, Sku, utcnow

log = logging.getLogger("opendom.catalogue")

ENTITY = "sku"
FIELDS: tuple[str, ...] = tuple(SkuSpec.model_fields)
CATALOGUE = "catalogue"  # FeedSource.kind of a PIM
LISTED = 50  # refused items named in a message; the rest are counted
MAX_PAGES_PER_PULL = 20  # bounded work per pull; the next one carries on from the cursor


@dataclass(frozen=True, slots=True)
class SpecProblem:
    index: int  # the item's position in the batch
    field: str  # "" when the item as a whole is refused
    message: str

    def where(self, what: str) -> str:
        return f"{what}[{self.index}]" + (f".{self.field}" if self.field else "")


class InvalidSkuSpecs(DomainError):
    """Some items of a batch were refused: nothing was applied."""

    code = "invalid_sku_specs"

    def __init__(self, problems: list[SpecProblem], what: str = "items") -> None:
        self.problems = problems
        self.what = what
        listed = "; ".join(f"{p.where(what)}: {p.message}" for p in problems[:LISTED])
        more = f" (and {len(problems) - LISTED} more)" if len(problems) > LISTED else ""
        super().__init__(f"nothing applied: {listed}{more}")


class DuplicateSkus(DomainError):
    """A batch gives the same SKU twice: which one should win is not ours to guess."""

    code = "duplicate_skus"

    def __init__(self, skus: list[str]) -> None:
        self.skus = skus
        super().__init__(f"sku: given more than once in the batch: {', '.join(skus)}")


class InactiveSkus(UnknownReference):
    """Known but no longer sold: refused where an unknown SKU is, saying why."""

    code = "inactive_sku"

    def __init__(self, field: str, values: list[str]) -> None:
        self.field = field
        self.values = values
        DomainError.__init__(self, f"{field}: inactive {', '.join(values)} (no longer sold)")


class SourceMismatch(DomainError):
    """A catalogue source name already used by a stock feed."""

    code = "source_in_use"


# ---------------------------------------------------------------- validating


def parse_sku_specs(items: Sequence[Any]) -> list[SkuSpec]:
    """Every item as a SkuSpec, or InvalidSkuSpecs naming each refused item by index and field
    (a SKU given twice is refused at its second place)."""
    specs: list[SkuSpec] = []
    problems: list[SpecProblem] = []
    first_at: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            spec = item if isinstance(item, SkuSpec) else SkuSpec.model_validate(item)
        except ValidationError as exc:
            problems += [
                SpecProblem(index, ".".join(str(p) for p in e["loc"]), e["msg"])
                for e in exc.errors()
            ]
            continue
        if spec.sku in first_at:
            message = f"{spec.sku} is given twice (first at index {first_at[spec.sku]})"
            problems.append(SpecProblem(index, "sku", message))
            continue
        first_at[spec.sku] = index
        specs.append(spec)
    if problems:
        raise InvalidSkuSpecs(problems)
    return specs


# ---------------------------------------------------------------- applying


def apply_skus(session: Session, specs: Sequence[SkuSpec], actor: str) -> Applied:
    """Create the new SKUs and update the changed ones, each with one audit entry; identical
    ones are left untouched. DuplicateSkus if a SKU is given twice. The caller owns the
    transaction."""
    one_configuration_writer(session)
    _refuse_duplicates(specs)
    current = _current(session, [s.sku for s in specs])
    now = utcnow()
    applied = Applied()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    for spec in specs:
        after = spec.model_dump()
        before = current.get(spec.sku)
        if before is None:
            inserts.append({**after, "updated_at": now})
            # What field_changes(None, after) gives: a SkuSpec's values (str, float, bool,
            # None) are already JSON-plain, and this path runs for every SKU of a first import.
            created = {name: [None, value] for name, value in after.items()}
            audit.append(_entry(spec.sku, "create", actor, created, now))
            applied.created.append(spec.sku)
            continue
        # field_changes over the differing fields only: a whole catalogue sent again (most
        # SKUs equal, a field or two changed in the others) costs a dict comparison per SKU.
        differing = {name: value for name, value in after.items() if before[name] != value}
        changes = field_changes(before, differing) if differing else {}
        if not changes:
            applied.unchanged += 1
            continue
        updates.append({**after, "updated_at": now})
        action = "deactivate" if before["active"] and not spec.active else "update"
        audit.append(_entry(spec.sku, action, actor, changes, now))
        applied.updated.append(spec.sku)
    # Core executemany on the tables, not the ORM's per-object bookkeeping: 50,000 SKUs and
    # their audit entries in a few seconds.
    connection = session.connection()
    skus = Sku.__table__
    if inserts:
        connection.execute(insert(skus), inserts)
    if updates:
        connection.execute(
            update(skus)
            .where(skus.c.sku == bindparam("key"))
            .values({name: bindparam(name) for name in (*FIELDS[1:], "updated_at")}),
            [{**row, "key": row["sku"]} for row in updates],
        )
    if audit:
        connection.execute(insert(ConfigChange.__table__), audit)
    return applied


def _refuse_duplicates(specs: Sequence[SkuSpec]) -> None:
    seen: set[str] = set()
    twice: set[str] = set()
    for spec in specs:
        (twice if spec.sku in seen else seen).add(spec.sku)
    if twice:
        raise DuplicateSkus(sorted(twice))


def _current(session: Session, skus: list[str]) -> dict[str, dict[str, Any]]:
    """The specification fields of the SKUs of `skus` that exist, by SKU."""
    columns = [getattr(Sku, name) for name in FIELDS]
    wanted = sorted(set(skus))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        for row in session.execute(select(*columns).where(col(Sku.sku).in_(chunk))):
            found[row.sku] = dict(row._mapping)
    return found


def _entry(sku: str, action: str, actor: str, changes: Changes, at: datetime) -> dict[str, Any]:
    return {
        "entity": ENTITY,
        "entity_id": sku,
        "action": action,
        "actor": actor,
        "changes": changes,
        "at": at,
    }


def sku_spec(row: Sku) -> SkuSpec:
    """The specification a stored SKU answers to (for export: applying it again changes
    nothing). Not validated again: a row written before a rule existed is still exported."""
    return SkuSpec.model_construct(**{name: getattr(row, name) for name in FIELDS})


# ---------------------------------------------------------------- reading


def get_sku(session: Session, sku: str) -> Sku | None:
    return session.get(Sku, sku)


def list_skus(
    session: Session, active: bool | None = None, after: str | None = None, limit: int = 100
) -> list[Sku]:
    """SKUs in SKU order, after `after` (the last one of the previous page)."""
    query = select(Sku).order_by(col(Sku.sku)).limit(limit)
    if active is not None:
        query = query.where(col(Sku.active).is_(active))
    if after is not None:
        query = query.where(col(Sku.sku) > after)
    return list(session.exec(query).all())


def refuse_unsellable_skus(session: Session, skus: Iterable[str], field: str) -> None:
    """UnknownReference naming `field` and every unknown SKU, else InactiveSkus naming every
    inactive one, sorted: what order intake and the checkout check refuse."""
    wanted = set(skus)
    activity = sku_activity(session, wanted)
    if unknown := sorted(wanted - activity.keys()):
        raise UnknownReference(field, unknown)
    if inactive := sorted(sku for sku, active in activity.items() if not active):
        raise InactiveSkus(field, inactive)


# ---------------------------------------------------------------- a PIM's push


@dataclass(frozen=True, slots=True)
class CatalogueOutcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    replayed: bool = False  # this source sent this event before: nothing was done


def push_catalogue(
    session: Session, source: str, event_id: str, specs: Sequence[SkuSpec], actor: str
) -> CatalogueOutcome:
    """A batch pushed by a PIM, applied once per (source, event id) like a stock feed's
    message: a replay answers `replayed` and changes nothing. The caller owns the transaction
    (and validates the items first: `parse_sku_specs`)."""
    if not _first_time(session, source, event_id):
        return CatalogueOutcome(replayed=True)
    applied = apply_skus(session, specs, actor)
    return CatalogueOutcome(applied.created, applied.updated, applied.unchanged)


def _first_time(session: Session, source: str, event_id: str) -> bool:
    """Record the event id; False if this source sent it before (the unique constraint decides,
    so two concurrent pushes of one event cannot both apply)."""
    try:
        with session.begin_nested():
            session.add(FeedEvent(source=source, event_id=event_id))
        return True
    except IntegrityError:
        return False


# ---------------------------------------------------------------- a PIM's pull


class CataloguePage(Protocol):
    """One page of a PIM's catalogue (connectors.pim's format)."""

    @property
    def items(self) -> Sequence[Any]: ...
    @property
    def next_cursor(self) -> str | None: ...
    @property
    def has_more(self) -> bool: ...


# (PIM URL, cursor) -> the page after the cursor; raises the connector's errors.
FetchPage = Callable[[str, str | None], CataloguePage]


@dataclass
class CataloguePull:
    """What one pull of a PIM did."""

    source: str
    cursor: str | None  # where the pull got to (where the next one starts)
    pages: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    refused: str | None = None  # why the page at `cursor` was refused; nothing of it applied

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def catalogue_sources(engine: Engine) -> list[FeedSource]:
    """The enabled PIMs to pull."""
    with Session(engine, expire_on_commit=False) as session:
        query = select(FeedSource).where(
            col(FeedSource.kind) == CATALOGUE, col(FeedSource.enabled).is_(True)
        )
        return list(session.exec(query.order_by(col(FeedSource.source))).all())


def pull_catalogue(
    engine: Engine,
    source: str,
    fetch: FetchPage,
    actor: str | None = None,
    max_pages: int = MAX_PAGES_PER_PULL,
    deadline: float | None = None,
) -> CataloguePull:
    """Pull the catalogue source `source` from its cursor, at most `max_pages` pages and no new
    page after `deadline` (time.monotonic()), each page and its cursor committed together. A
    page with a refused item stops the pull there (its reason in `refused`, the cursor left on
    it). UnknownReference if `source` is not a catalogue source; the fetcher's errors (the PIM
    unreachable) propagate."""
    with Session(engine) as session:
        row = session.get(FeedSource, source)
        if row is None or row.kind != CATALOGUE:
            raise UnknownReference("source", [f"{source} (not a catalogue source)"])
        url, cursor = row.url, row.cursor
    actor = actor or f"pim:{source}"
    pull = CataloguePull(source=source, cursor=cursor)
    for number in range(max_pages):
        if number and deadline is not None and time.monotonic() > deadline:
            break  # the rest waits for the next pull, from the cursor
        page = fetch(url, cursor)
        try:
            specs = parse_sku_specs(page.items)
        except InvalidSkuSpecs as exc:
            pull.refused = f"page after cursor {cursor!r}: {exc}"
            log.warning("catalogue %s: refused the %s; the cursor stays", source, pull.refused)
            break
        applied = _apply_pulled_page(engine, source, cursor, page.next_cursor, specs, actor)
        if applied is None:
            break  # another pull moved the cursor meanwhile: it carries on from there
        pull.pages += 1
        pull.created += applied.created
        pull.updated += applied.updated
        pull.unchanged += applied.unchanged
        cursor = pull.cursor = page.next_cursor or cursor
        if not page.has_more or not page.next_cursor:
            break
    return pull


def _apply_pulled_page(
    engine: Engine,
    source: str,
    cursor: str | None,
    next_cursor: str | None,
    specs: list[SkuSpec],
    actor: str,
) -> Applied | None:
    """The page's SKUs and the source's new cursor commit together. The cursor moves only from
    `cursor`, so a page pulled twice at once is applied once (None for the second)."""
    with transaction(engine) as session:
        if not advance_cursor(session, source, cursor, next_cursor):
            return None
        return apply_skus(session, specs, actor)


def set_catalogue_source(session: Session, source: str, url: str, actor: str) -> str:
    """Name a PIM to pull (a FeedSource of kind catalogue): "created", "updated" (a new URL,
    which starts again from the beginning: the old cursor means nothing to another system) or
    "unchanged". SourceMismatch if the name is a stock feed's. The caller owns the transaction."""
    row = session.get(FeedSource, source)
    if row is not None and row.kind != CATALOGUE:
        raise SourceMismatch(f"source: {source} is already a {row.kind} feed")
    if row is not None and row.url == url:
        return "unchanged"
    before: Mapping[str, Any] | None = None if row is None else {"url": row.url, "kind": row.kind}
    action = "create" if row is None else "update"
    row = row or FeedSource(source=source, url=url, kind=CATALOGUE)
    row.url, row.cursor = url, None
    session.add(row)
    changes = field_changes(before, {"url": url, "kind": CATALOGUE})
    record_change(session, "feed_source", source, action, actor, changes)
    return "created" if action == "create" else "updated"
