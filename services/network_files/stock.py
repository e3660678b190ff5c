"""Opening stock from a network file, in bulk: millions of positions in one transaction.

Rows arrive as columns (domain.network_files.StockRows). They are handled a group of nodes at a
time: the group's existing positions are read in one query (locked on PostgreSQL), compared in
Python, and the new positions, their opening movements and the changed positions are written
with multi-row statements; no ORM object per row.

- A new position opens with the file's on hand and one `snapshot` movement (none for 0), as
  ledger.stock.open_position does, so summing a position's movements still rebuilds it.
- An existing position whose on hand differs is set to it as a full snapshot sets it
  (ledger.feeds): reserved and held stay, the difference is one `snapshot` movement, and on
  hand may not drop below reserved + held (that line is refused). A changed safety override
  updates the position's effective safety stock, with a zero-delta movement (so the checkout's
  cache, which tails movements, sees it).
- An equal position is not written.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Connection, bindparam, select, update
from sqlmodel import Session, col

from domain.network_files import NO_OVERRIDE, Refusal, StockRows, where
from ledger.catalogue import known_nodes, known_skus
from ledger.config_audit import one_configuration_writer
from ledger.tables import MovementKind, Node, NodeTypePolicy, StockMovement, StockPosition, utcnow

# Rows handled per group of nodes: bounds the memory of one round of statements.
GROUP_ROWS = 50_000
# Rows per multi-row INSERT / UPDATE statement.
STATEMENT_ROWS = 5_000
# SQLite's page cache while importing, in KiB: the position and movement indexes by SKU take
# millions of inserts in no useful order, and with the default 2 MiB cache each one went to
# disk (5,000,000 positions took 10x longer than 500,000 x 10).
SQLITE_CACHE_KIB = 256 * 1024
_POSITIONS = StockPosition.__table__  # type: ignore[attr-defined]


@dataclass
class StockOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[Refusal] = field(default_factory=list)


def refuse_unknown_references(
    session: Session,
    rows: StockRows,
    nodes_before: set[str],
    skus_before: set[str],
    nodes_file: str = "an earlier file",
    skus_file: str = "an earlier file",
) -> list[Refusal]:
    """Lines naming a node or SKU neither in the database nor in `nodes_before` / `skus_before`
    (what the files applied before this one define) are refused and dropped from `rows`."""
    nodes = known_nodes(session, rows.node_ids) | nodes_before
    skus = known_skus(session, rows.skus) | skus_before
    node_ok = np.array([n in nodes for n in rows.node_ids] or [True], dtype=bool)
    sku_ok = np.array([s in skus for s in rows.skus] or [True], dtype=bool)
    good_node, good_sku = node_ok[rows.node], sku_ok[rows.sku]
    refused = []
    for i in np.flatnonzero(~(good_node & good_sku)).tolist():
        at = where(rows.name, rows.fmt, int(rows.place[i]))
        if not good_node[i]:
            node_id = rows.node_ids[rows.node[i]]
            refused.append(
                Refusal(
                    at, f"node_id: unknown node '{node_id}' (not in the database nor {nodes_file})"
                )
            )
        if not good_sku[i]:
            sku = rows.skus[rows.sku[i]]
            refused.append(
                Refusal(at, f"sku: unknown SKU '{sku}' (not in the database nor {skus_file})")
            )
    rows.keep(good_node & good_sku)
    return refused


def apply_stock(session: Session, rows: StockRows, actor: str, write: bool = True) -> StockOutcome:
    """Make the positions of `rows` match them (write=False: only count and refuse). The caller
    owns the transaction and rolls it back if `refused` is not empty."""
    one_configuration_writer(session)
    outcome = StockOutcome()
    if not len(rows):
        return outcome
    defaults = _default_safety(session, rows.node_ids)
    cause = f"network import by {actor}"[:300]
    with _large_sqlite_cache(session, write and len(rows) > GROUP_ROWS):
        _apply_groups(session, rows, defaults, cause, write, outcome)
    return outcome


@contextmanager
def _large_sqlite_cache(session: Session, wanted: bool) -> Iterator[None]:
    connection = session.connection()
    if not wanted or connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        yield
    finally:  # the pooled connection goes back as it came
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


def _apply_groups(
    session: Session,
    rows: StockRows,
    defaults: dict[str, int],
    cause: str,
    write: bool,
    outcome: StockOutcome,
) -> None:
    for node_numbers, indices in _groups(rows):
        node_ids = [rows.node_ids[n] for n in node_numbers]
        existing = _existing(session, node_ids, lock=write)
        inserts: list[dict] = []
        updates: list[dict] = []
        movements: list[dict] = []
        now = utcnow()
        nodes = rows.node[indices].tolist()
        skus = rows.sku[indices].tolist()
        wanted = rows.on_hand[indices].tolist()
        overrides = rows.override[indices].tolist()
        for k, (n, s, on_hand, override) in enumerate(
            zip(nodes, skus, wanted, overrides, strict=True)
        ):
            node_id, sku = rows.node_ids[n], rows.skus[s]
            override = None if override == NO_OVERRIDE else override
            found = existing.get((node_id, sku))
            if found is None:
                outcome.created += 1
                safety = defaults.get(node_id, 0) if override is None else override
                inserts.append((node_id, sku, on_hand, safety, override))
                if on_hand:
                    movements.append((node_id, sku, on_hand))
                continue
            position_id, before, reserved, held, old_override = found
            if before == on_hand and old_override == override:
                outcome.unchanged += 1
                continue
            if on_hand < reserved + held:
                place = int(rows.place[indices[k]])
                outcome.refused.append(
                    Refusal(
                        where(rows.name, rows.fmt, place),
                        f"on_hand: {on_hand} is below the {reserved + held} units reserved or "
                        f"held at {node_id} for {sku} (reserved {reserved}, held {held})",
                    )
                )
                continue
            outcome.updated += 1
            safety = defaults.get(node_id, 0) if override is None else override
            updates.append(
                {"pid": position_id, "new_on_hand": on_hand, "new_override": override,
                 "new_safety": safety, "now": now}
            )  # fmt: skip
            # Also when only the safety override changed (a zero delta): the checkout's cache
            # re-reads the positions the movements name.
            movements.append((node_id, sku, on_hand - before))
        if write and not outcome.refused:
            _write(session, inserts, updates, movements, cause, now)


def _write(
    session: Session,
    inserts: list[tuple],
    updates: list[dict],
    movements: list[tuple],
    cause: str,
    now: datetime,
) -> None:
    connection = session.connection()
    # The statements' constant columns are SQL literals, not a parameter per row; `at` and
    # `updated_at` are UTC wall-clock time, as the engines store them (ledger.db).
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    _insert_rows(
        connection,
        _POSITIONS.name,
        ("node_id", "sku", "on_hand", "safety_stock", "safety_override"),
        ("varchar", "varchar", "integer", "integer", "integer"),
        {"reserved": ("0", "integer"), "held": ("0", "integer"),
         "updated_at": (f"'{stamp}'", "timestamptz")},
        inserts,
    )  # fmt: skip
    statement = (
        update(_POSITIONS)
        .where(_POSITIONS.c.id == bindparam("pid"))
        .values(
            on_hand=bindparam("new_on_hand"),
            safety_override=bindparam("new_override"),
            safety_stock=bindparam("new_safety"),
            updated_at=bindparam("now"),
        )
    )
    for start in range(0, len(updates), STATEMENT_ROWS):
        connection.execute(statement, updates[start : start + STATEMENT_ROWS])
    _insert_rows(
        connection,
        StockMovement.__tablename__,
        ("node_id", "sku", "d_on_hand"),
        ("varchar", "varchar", "integer"),
        {
            "kind": (f"'{MovementKind.SNAPSHOT}'", "varchar"),
            "d_reserved": ("0", "integer"),
            "d_held": ("0", "integer"),
            "cause": (_SHARED, "varchar"),  # one parameter per statement: it names the actor
            "at": (f"'{stamp}'", "timestamptz"),
        },
        movements,
        shared=cause,
    )


_SHARED = "?"  # in `constants`: the statement's `shared` parameter


def _insert_rows(
    connection: Connection,
    table: str,
    columns: tuple[str, ...],
    types: tuple[str, ...],
    constants: dict[str, tuple[str, str]],
    rows: list[tuple],
    shared: str | None = None,
) -> None:
    """INSERTs of STATEMENT_ROWS rows each, parameters passed to the driver as they are:
    SQLAlchemy's per-row parameter processing cost more than the database's work.
    `constants`: the other columns' SQL and PostgreSQL type.

    SQLite: multi-row VALUES. PostgreSQL: one array per column (`unnest`), so the statement
    stays a few parameters long; psycopg spent longer rewriting a 25,000-placeholder
    statement than the server spent inserting its rows."""
    if not rows:
        return
    names = ", ".join((*columns, *constants))
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        extra = ", ".join(
            f"CAST({'%s' if sql == _SHARED else sql} AS {t})" for sql, t in constants.values()
        )
        sql = f"INSERT INTO {table} ({names}) SELECT u.*, {extra} FROM unnest({arrays}) AS u"
    else:
        values = ["?"] * len(columns) + [sql for sql, _ in constants.values()]
        row_sql = "(" + ", ".join(values) + ")"
        head = f"INSERT INTO {table} ({names}) VALUES "
    with_shared = any(sql == _SHARED for sql, _ in constants.values())
    for start in range(0, len(rows), STATEMENT_ROWS):
        chunk = rows[start : start + STATEMENT_ROWS]
        parameters: list = []
        if postgres:
            # The shared parameter comes first: its placeholder is in the SELECT list.
            parameters = [shared] if with_shared else []
            parameters += [list(column) for column in zip(*chunk, strict=True)]
            connection.exec_driver_sql(sql, tuple(parameters))
            continue
        for row in chunk:
            parameters.extend(row)
            if with_shared:
                parameters.append(shared)
        connection.exec_driver_sql(head + ", ".join([row_sql] * len(chunk)), tuple(parameters))


def _groups(rows: StockRows) -> Iterator[tuple[list[int], np.ndarray]]:
    """(node numbers, row indices) of consecutive nodes holding about GROUP_ROWS rows, rows in
    (node, sku) order."""
    order = np.lexsort((rows.sku, rows.node))
    by_node = rows.node[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(by_node)) + 1, [len(order)]))
    first = 0
    for i in range(1, len(starts)):
        if starts[i] - starts[first] >= GROUP_ROWS or i == len(starts) - 1:
            chunk = order[starts[first] : starts[i]]
            yield sorted(set(rows.node[chunk].tolist())), chunk
            first = i


def _existing(
    session: Session, node_ids: list[str], lock: bool
) -> dict[tuple[str, str], tuple[int, int, int, int, int | None]]:
    query = select(
        StockPosition.node_id,
        StockPosition.sku,
        StockPosition.id,
        StockPosition.on_hand,
        StockPosition.reserved,
        StockPosition.held,
        StockPosition.safety_override,
    ).where(col(StockPosition.node_id).in_(node_ids))
    if lock:  # PostgreSQL row locks against a reservation in between; SQLite has one writer
        query = query.order_by(col(StockPosition.node_id), col(StockPosition.sku)).with_for_update()
    return {(r[0], r[1]): (r[2], r[3], r[4], r[5], r[6]) for r in session.execute(query)}


def _default_safety(session: Session, node_ids: list[str]) -> dict[str, int]:
    """Each node's safety stock for positions without an override (ledger.safety's rule)."""
    policies = dict(
        session.execute(select(NodeTypePolicy.node_type, NodeTypePolicy.safety_stock)).all()
    )
    defaults: dict[str, int] = {}
    for start in range(0, len(node_ids), 5000):
        chunk = node_ids[start : start + 5000]
        query = select(Node.node_id, Node.node_type, Node.safety_stock).where(
            col(Node.node_id).in_(chunk)
        )
        for node_id, node_type, safety in session.execute(query):
            defaults[node_id] = safety if safety is not None else policies.get(node_type, 0)
    return defaults
