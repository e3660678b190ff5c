"""Configuring the network: nodes, channels with their stock pools, and carrier services.

Each `apply_*` takes whole specifications (domain.configuration) keyed by id and makes the ledger
match them, set-based: the existing rows of a batch are read in chunks, each spec is compared
with its row, new ones are inserted and changed ones updated; a row that already matches is not
written and gets no audit entry. Every created or updated entity gets one ConfigChange with the
fields that changed, before and after (ledger.config_audit).

The caller owns the transaction (`ledger.db.transaction`): a refusal (a DomainError, raised
before or while writing) rolls the whole batch back. The API, `opendom` and the bulk import of
network files (services.network_files) all come through here."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, insert
from sqlmodel import Session, SQLModel, col, select

from domain.configuration import Applied, CarrierServiceSpec, ChannelSpec, NodeSpec
from domain.errors import DomainError, UnknownReference
from domain.node_status import NodeStatus, takes_new_orders
from ledger.catalogue import CHUNK, known_nodes
from ledger.config_audit import field_changes, one_configuration_writer, record_change
from ledger.safety import refresh_safety_stock
from ledger.tables import CarrierServiceRow, Channel, ChannelPool, Node, utcnow
from services.preorders import forget_preorder_channels
from services.sourcing_policy import forget_cached_policies

NODE = "node"
CHANNEL = "channel"
CARRIER = "carrier"

Row = TypeVar("Row", bound=SQLModel)
Key = TypeVar("Key")


class DuplicateSpec(DomainError):
    """One batch names the same entity twice: which of the two is meant cannot be guessed."""

    code = "duplicate_id"

    def __init__(self, entity: str, entity_id: str) -> None:
        self.entity = entity
        self.entity_id = entity_id
        super().__init__(f"{entity} {entity_id} is given more than once")


class UnknownPoolNodes(UnknownReference):
    """A channel's pool names node ids the network does not have."""

    def __init__(self, channel: str, node_ids: list[str]) -> None:
        self.channel = channel
        self.field = "pool_node_ids"
        self.values = node_ids
        DomainError.__init__(
            self, f"channel {channel}: pool_node_ids: unknown {', '.join(node_ids)}"
        )


class ValueTooLong(DomainError):
    """A value longer than its ledger column holds (PostgreSQL would refuse it mid-batch)."""

    code = "invalid_request"

    def __init__(self, entity: str, entity_id: str, field: str, limit: int) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.field = field
        self.limit = limit
        super().__init__(f"{entity} {entity_id}: {field}: at most {limit} characters")


# ------------------------------------------------------------------------------------- nodes


def apply_nodes(session: Session, specs: Sequence[NodeSpec], actor: str) -> Applied:
    """Create or update each node as specified. A new node is up, and in sourcing if enabled;
    an existing one keeps its status, and is in sourcing only while enabled and up."""
    one_configuration_writer(session)
    _refuse_duplicates(NODE, [s.node_id for s in specs])
    rows = _load(session, Node, col(Node.node_id), (s.node_id for s in specs), _node_key)
    applied = Applied()
    safety_changed: list[str] = []
    new_rows: list[dict[str, Any]] = []
    for spec in specs:
        values = _node_values(spec)
        _refuse_too_long(Node, NODE, spec.node_id, values)
        row = rows.get(spec.node_id)
        if row is None:
            new_rows.append(
                values | {"status": NodeStatus.UP, "active": spec.enabled, "updated_at": utcnow()}
            )
            changes = field_changes(None, _without(values, "node_id"))
            record_change(session, NODE, spec.node_id, "create", actor, changes)
            applied.created.append(spec.node_id)
            continue
        changes = field_changes(_stored(row, values), _without(values, "node_id"))
        if not changes:
            applied.unchanged += 1
            continue
        for name in changes:
            setattr(row, name, values[name])
        active = row.enabled and takes_new_orders(NodeStatus(row.status))
        if active != row.active:
            changes["active"] = [row.active, active]
            row.active = active
        row.updated_at = utcnow()
        session.add(row)
        record_change(session, NODE, spec.node_id, "update", actor, changes)
        applied.updated.append(spec.node_id)
        if "safety_stock" in changes or "node_type" in changes:
            safety_changed.append(spec.node_id)
    if new_rows:
        # One batched INSERT: building a thousand ORM objects cost more than writing them.
        session.execute(insert(Node), new_rows)
    session.flush()
    for node_id in safety_changed:
        # The positions carry their effective safety stock (ledger.safety), so reservations
        # stay single-row updates: it is recomputed where the node's or its type's changed.
        refresh_safety_stock(session, node_id)
    return applied


def deactivate_node(session: Session, node_id: str, reason: str, actor: str) -> bool:
    """Take the node out of sourcing whatever its status, until a spec enables it again.
    False: it was already deactivated (nothing written)."""
    one_configuration_writer(session)
    row = session.get(Node, node_id)
    if row is None:
        raise UnknownReference("node_id", [node_id])
    if not row.enabled:
        return False
    changes: dict[str, list[Any]] = {"enabled": [True, False], "reason": [None, reason]}
    if row.active:
        changes["active"] = [True, False]
    row.enabled = False
    row.active = False
    row.updated_at = utcnow()
    session.add(row)
    record_change(session, NODE, node_id, "deactivate", actor, changes)
    session.flush()
    return True


def node_spec(row: Node) -> NodeSpec:
    """The node's configuration as a spec: applying it again changes nothing."""
    values = {name: getattr(row, name) for name in NodeSpec.model_fields}
    values["system_url"] = row.system_url or None
    return NodeSpec.model_validate(values)


def _node_values(spec: NodeSpec) -> dict[str, Any]:
    """The node's columns as stored: enums as their strings, holidays as sorted ISO dates, and
    no URL as "" (the column is required; a simulator node is reached under the simulators')."""
    values = spec.model_dump(mode="json")
    values["holidays"] = sorted(set(values["holidays"]))
    values["system_url"] = spec.system_url or ""
    return values


# ---------------------------------------------------------------------------------- channels


def apply_channels(session: Session, specs: Sequence[ChannelSpec], actor: str) -> Applied:
    """Create or update each channel and its pool. A pool naming no node type, node, share or
    cap is no pool row: the channel sells from every node."""
    one_configuration_writer(session)
    ids = [s.channel for s in specs]
    _refuse_duplicates(CHANNEL, ids)
    _refuse_unknown_pool_nodes(session, specs)
    channels = _load(session, Channel, col(Channel.channel), ids, _channel_key)
    pools = _load(session, ChannelPool, col(ChannelPool.channel), ids, _pool_key)
    applied = Applied()
    for spec in specs:
        values = _channel_values(spec)
        _refuse_too_long(Channel, CHANNEL, spec.channel, values)
        row, pool = channels.get(spec.channel), pools.get(spec.channel)
        before = None if row is None else stored_channel_values(row, pool)
        changes = field_changes(before, _without(values, "channel"))
        if not changes:
            applied.unchanged += 1
            continue
        row = row or Channel(channel=spec.channel, name=spec.name, channel_type=spec.channel_type)
        for name in _CHANNEL_COLUMNS:
            setattr(row, name, values[name])
        row.updated_at = utcnow()
        session.add(row)
        _write_pool(session, spec.channel, pool, values)
        action = "create" if before is None else "update"
        record_change(session, CHANNEL, spec.channel, action, actor, changes)
        (applied.created if before is None else applied.updated).append(spec.channel)
    session.flush()
    if applied.created or applied.updated:
        # A changed inventory_aware switch: this process's next policy read sees it (others within
        # services.sourcing_policy.CHECK_SECONDS).
        forget_cached_policies()
        forget_preorder_channels()  # and a changed allow_preorders switch
    return applied


def channel_spec(channel: Channel, pool: ChannelPool | None) -> ChannelSpec:
    return ChannelSpec.model_validate(stored_channel_values(channel, pool))


_CHANNEL_COLUMNS = (
    "name",
    "channel_type",
    "ruleset",
    "default_scenario",
    "fulfilment_policy",
    "ship_complete_wait_seconds",
    "ship_complete_then",
    "allow_preorders",
    "inventory_aware",
    "active",
    "consolidation_window_seconds",
    "max_shipments_per_order",
)
_POOL_FIELDS = {  # spec field -> ChannelPool column
    "pool_node_types": "node_types",
    "pool_node_ids": "node_ids",
    "share_by_node_type": "share_by_node_type",
    "cap_by_node_type": "cap_by_node_type",
}


def _channel_values(spec: ChannelSpec) -> dict[str, Any]:
    values = spec.model_dump(mode="json")
    # Pools are sets of types and nodes: the order they were listed in is no change.
    for name in ("pool_node_types", "pool_node_ids"):
        if values[name] is not None:
            values[name] = sorted(set(values[name]))
    return values


def stored_channel_values(row: Channel, pool: ChannelPool | None) -> dict[str, Any]:
    """The channel and its pool under ChannelSpec's field names, as stored (not validated)."""
    values: dict[str, Any] = {"channel": row.channel}
    values.update({name: getattr(row, name) for name in _CHANNEL_COLUMNS})
    for field, column in _POOL_FIELDS.items():
        empty = {} if field.endswith("by_node_type") else None
        values[field] = (getattr(pool, column) if pool is not None else None) or empty
    return values


def _write_pool(
    session: Session, channel: str, pool: ChannelPool | None, values: Mapping[str, Any]
) -> None:
    names_nothing = not any(values[field] for field in _POOL_FIELDS) and all(
        values[field] is None for field in ("pool_node_types", "pool_node_ids")
    )
    if names_nothing:
        if pool is not None:
            session.delete(pool)
        return
    pool = pool or ChannelPool(channel=channel)
    for field, column in _POOL_FIELDS.items():
        setattr(pool, column, values[field])
    session.add(pool)


def _refuse_unknown_pool_nodes(session: Session, specs: Sequence[ChannelSpec]) -> None:
    named = {node_id for s in specs for node_id in s.pool_node_ids or []}
    known = known_nodes(session, named)
    for spec in specs:
        if unknown := sorted(set(spec.pool_node_ids or []) - known):
            raise UnknownPoolNodes(spec.channel, unknown)


# -------------------------------------------------------------------------- carrier services


def apply_carrier_services(
    session: Session, specs: Sequence[CarrierServiceSpec], actor: str
) -> Applied:
    """Create or update each carrier service (its transit bands and hand-over cut-off)."""
    one_configuration_writer(session)
    keys = [(s.carrier, s.service) for s in specs]
    _refuse_duplicates(CARRIER, [_carrier_id(*key) for key in keys])
    loaded = _load(
        session,
        CarrierServiceRow,
        col(CarrierServiceRow.carrier),
        (carrier for carrier, _ in keys),
        _service_key,
    )
    applied = Applied()
    for spec in specs:
        entity_id = _carrier_id(spec.carrier, spec.service)
        values = spec.model_dump(mode="json")
        _refuse_too_long(CarrierServiceRow, CARRIER, entity_id, values)
        row = loaded.get((spec.carrier, spec.service))
        changed = _without(values, "carrier", "service")
        if row is None:
            session.add(CarrierServiceRow(**values, updated_at=utcnow()))
            record_change(
                session, CARRIER, entity_id, "create", actor, field_changes(None, changed)
            )
            applied.created.append(entity_id)
            continue
        changes = field_changes(_stored(row, changed), changed)
        if not changes:
            applied.unchanged += 1
            continue
        for name in changes:
            setattr(row, name, values[name])
        row.updated_at = utcnow()
        session.add(row)
        record_change(session, CARRIER, entity_id, "update", actor, changes)
        applied.updated.append(entity_id)
    session.flush()
    return applied


def carrier_service_spec(row: CarrierServiceRow) -> CarrierServiceSpec:
    return CarrierServiceSpec.model_validate(
        {name: getattr(row, name) for name in CarrierServiceSpec.model_fields}
    )


def _carrier_id(carrier: str, service: str) -> str:
    """How the audit trail and Applied name a carrier service."""
    return f"{carrier}/{service}"


# ---------------------------------------------------------------------------------- shared


def _refuse_duplicates(entity: str, ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for entity_id in ids:
        if entity_id in seen:
            raise DuplicateSpec(entity, entity_id)
        seen.add(entity_id)


def _load(
    session: Session,
    model: type[Row],
    column: ColumnElement[str],
    values: Iterable[str],
    key: Callable[[Row], Key],
) -> dict[Key, Row]:
    """The rows of `model` whose `column` is among `values`, a chunk of values per query."""
    wanted = sorted(set(values))
    found: dict[Key, Row] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        for row in session.exec(select(model).where(column.in_(chunk))):
            found[key(row)] = row
    return found


def _node_key(row: Node) -> str:
    return row.node_id


def _channel_key(row: Channel | ChannelPool) -> str:
    return row.channel


_pool_key = _channel_key


def _service_key(row: CarrierServiceRow) -> tuple[str, str]:
    return (row.carrier, row.service)


def _stored(row: SQLModel, like: Mapping[str, Any]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in like}


def _without(values: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names}


def _refuse_too_long(
    table: type[SQLModel], entity: str, entity_id: str, values: Mapping[str, Any]
) -> None:
    """Some specs allow longer values than their columns hold (an id of 64 where the column
    keeps 40): refused here by name rather than by PostgreSQL halfway through a batch."""
    columns = table.__table__.columns  # type: ignore[attr-defined]
    for name, value in values.items():
        if isinstance(value, str) and name in columns:
            limit = getattr(columns[name].type, "length", None)
            if limit is not None and len(value) > limit:
                raise ValueTooLong(entity, entity_id, name, limit)
