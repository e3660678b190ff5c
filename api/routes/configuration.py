"""Configuring the network over HTTP: nodes, channels with their stock pools, carrier services,
and the audit trail of every change. The rules are services.configuration's; this module
parses, authorizes (admin, ops), calls it in a transaction of its own and maps.

A PUT carries the entity's whole configuration, keyed by the id in its path (the body may repeat
it, or leave it out): applying the same body again changes nothing and records nothing."""

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.deps import EngineDep, SessionDep
from api.errors import ApiError
from api.security import Ops, actor_of
from domain.configuration import (
    Applied,
    CarrierServiceSpec,
    ChannelSpec,
    Identifier,
    NodeSpec,
    Outcome,
)
from ledger.config_audit import changes_of
from ledger.db import transaction
from ledger.tables import CarrierServiceRow, Channel, ChannelPool
from ledger.tables import Node as NodeRow
from services import configuration

router = APIRouter(prefix="/v1", tags=["configuration"])

Spec = TypeVar("Spec", bound=BaseModel)


# ------------------------------------------------------------------------ request and answer


class NodeBody(NodeSpec):
    node_id: Identifier | None = None  # the path's


class NodeConfiguration(BaseModel):
    """The node as stored: its configuration (NodeSpec's fields), and where its status leaves it.
    Plain types: a row written by another path (the demo seed, an older OpenDOM) is shown as it
    is rather than failing the spec's checks."""

    node_id: str
    name: str
    node_type: str
    lat: float
    lon: float
    address_line1: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    can_ship: bool
    can_pickup: bool
    can_ship_to_store: bool
    daily_capacity: int
    priority: int
    working_days: list[int] = Field(description="0 = Monday")
    holidays: list[str] = Field(description="ISO dates")
    cutoff_time: str = Field(description="local time, HH:MM")
    timezone: str
    processing_days: int
    accept_sla_seconds: float | None = None
    pick_sla_seconds: float | None = None
    ship_sla_seconds: float | None = None
    safety_stock: int | None = None
    connector_kind: str
    system_url: str | None = Field(description="none for a simulator node")
    credential_ref: str | None = None
    enabled: bool
    status: str = Field(description="up | degraded | down (PUT /v1/nodes/{node_id}/status)")
    status_reason: str | None = None
    active: bool = Field(description="in sourcing: enabled and up")
    updated_at: datetime


class NodeApplied(NodeConfiguration):
    outcome: Outcome


class Deactivation(BaseModel):
    reason: str = Field(min_length=1, max_length=300)


class NodeDeactivated(NodeConfiguration):
    deactivated: bool = Field(description="false: it was already deactivated")


class ChannelBody(ChannelSpec):
    channel: Identifier | None = None  # the path's


class ChannelConfiguration(BaseModel):
    """The channel and its pool as stored (ChannelSpec's fields, plain types: a pool written by
    PUT /v1/channels/{channel}/pool is shown as it is)."""

    channel: str
    name: str
    channel_type: str
    ruleset: str | None = None
    default_scenario: str | None = None
    fulfilment_policy: str
    ship_complete_wait_seconds: float = 3 * 24 * 3600.0
    ship_complete_then: str = "ask"
    allow_preorders: bool = False
    inventory_aware: bool = False
    active: bool
    consolidation_window_seconds: float = 0.0
    max_shipments_per_order: int | None = None
    pool_node_types: list[str] | None = None
    pool_node_ids: list[str] | None = None
    share_by_node_type: dict[str, float] = {}
    cap_by_node_type: dict[str, int] = {}
    updated_at: datetime


class ChannelApplied(ChannelConfiguration):
    outcome: Outcome


class CarrierServiceBody(CarrierServiceSpec):
    carrier: Identifier | None = None  # the path's
    service: Identifier | None = None


class CarrierServiceConfiguration(BaseModel):
    carrier: str
    service: str
    name: str
    transit_bands: list[dict[str, float]] = Field(description='[{"max_km": 150, "days": 1}, ...]')
    cutoff_time: str
    active: bool
    updated_at: datetime


class CarrierServiceApplied(CarrierServiceConfiguration):
    outcome: Outcome


class ConfigChangePublic(BaseModel):
    id: int
    entity: str
    entity_id: str
    action: str
    actor: str
    changes: dict[str, Any] = Field(description="field -> [before, after]")
    at: datetime


# ------------------------------------------------------------------------------------- nodes


@router.put(
    "/nodes/{node_id}",
    response_model=NodeApplied,
    responses={201: {"model": NodeApplied, "description": "Created"}},
)
def put_node(
    node_id: str, body: NodeBody, response: Response, engine: EngineDep, client: Ops
) -> NodeApplied:
    """Create (201) or update (200) the node. A new node is up; `enabled: false` keeps it out of
    sourcing, and `enabled: true` puts it back if it is up."""
    spec = _spec(NodeSpec, body, node_id=node_id)
    applied = _apply(engine, configuration.apply_nodes, spec, actor_of(client))
    outcome = _outcome(applied, node_id, response)
    with Session(engine) as session:
        return NodeApplied(**_node(_node_row(session, node_id)), outcome=outcome)


@router.post("/nodes/{node_id}/deactivate", response_model=NodeDeactivated)
def deactivate_node(
    node_id: str, body: Deactivation, engine: EngineDep, client: Ops
) -> NodeDeactivated:
    """Out of sourcing whatever its status, until a PUT enables it again. Its stock stays."""
    with transaction(engine) as session:
        _node_row(session, node_id)
        done = configuration.deactivate_node(session, node_id, body.reason, actor_of(client))
        return NodeDeactivated(**_node(_node_row(session, node_id)), deactivated=done)


@router.get("/nodes/{node_id}", response_model=NodeConfiguration)
def get_node(node_id: str, session: SessionDep, client: Ops) -> NodeConfiguration:
    return NodeConfiguration(**_node(_node_row(session, node_id)))


def _node_row(session: Session, node_id: str) -> NodeRow:
    row = session.get(NodeRow, node_id)
    if row is None:
        raise ApiError(404, "unknown_node", f"no node {node_id}")
    return row


def _node(row: NodeRow) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in NodeConfiguration.model_fields}
    values["system_url"] = row.system_url or None
    return values


# ---------------------------------------------------------------------------------- channels


@router.put(
    "/channels/{channel}",
    response_model=ChannelApplied,
    responses={201: {"model": ChannelApplied, "description": "Created"}},
)
def put_channel(
    channel: str, body: ChannelBody, response: Response, engine: EngineDep, client: Ops
) -> ChannelApplied:
    """Create (201) or update (200) the channel and its pool: the node types or nodes it sells
    from (none named: every node) and a share or cap of a node type's stock."""
    spec = _spec(ChannelSpec, body, channel=channel)
    applied = _apply(engine, configuration.apply_channels, spec, actor_of(client))
    outcome = _outcome(applied, channel, response)
    with Session(engine) as session:
        return ChannelApplied(**_channel(session, _channel_row(session, channel)), outcome=outcome)


@router.get("/channels", response_model=list[ChannelConfiguration])
def list_channels(session: SessionDep, client: Ops) -> list[ChannelConfiguration]:
    rows = session.exec(select(Channel).order_by(col(Channel.channel))).all()
    return [ChannelConfiguration(**_channel(session, row)) for row in rows]


@router.get("/channels/{channel}", response_model=ChannelConfiguration)
def get_channel(channel: str, session: SessionDep, client: Ops) -> ChannelConfiguration:
    return ChannelConfiguration(**_channel(session, _channel_row(session, channel)))


def _channel_row(session: Session, channel: str) -> Channel:
    row = session.get(Channel, channel)
    if row is None:
        raise ApiError(404, "unknown_channel", f"no channel {channel}")
    return row


def _channel(session: Session, row: Channel) -> dict[str, Any]:
    pool = session.get(ChannelPool, row.channel)
    return configuration.stored_channel_values(row, pool) | {"updated_at": row.updated_at}


# -------------------------------------------------------------------------- carrier services


@router.put(
    "/carriers/{carrier}/services/{service}",
    response_model=CarrierServiceApplied,
    responses={201: {"model": CarrierServiceApplied, "description": "Created"}},
)
def put_carrier_service(
    carrier: str,
    service: str,
    body: CarrierServiceBody,
    response: Response,
    engine: EngineDep,
    client: Ops,
) -> CarrierServiceApplied:
    """Create (201) or update (200) a carrier's service: days in transit by distance band (the
    last band covers every longer distance) and the daily hand-over cut-off."""
    spec = _spec(CarrierServiceSpec, body, carrier=carrier, service=service)
    applied = _apply(engine, configuration.apply_carrier_services, spec, actor_of(client))
    outcome = _outcome(applied, f"{carrier}/{service}", response)
    with Session(engine) as session:
        row = session.get(CarrierServiceRow, (carrier, service))
        assert row is not None  # just applied
        return CarrierServiceApplied(**_carrier_service(row), outcome=outcome)


@router.get("/carriers", response_model=list[CarrierServiceConfiguration])
def list_carrier_services(session: SessionDep, client: Ops) -> list[CarrierServiceConfiguration]:
    rows = session.exec(
        select(CarrierServiceRow).order_by(
            col(CarrierServiceRow.carrier), col(CarrierServiceRow.service)
        )
    ).all()
    return [CarrierServiceConfiguration(**_carrier_service(row)) for row in rows]


def _carrier_service(row: CarrierServiceRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in CarrierServiceConfiguration.model_fields}


# ----------------------------------------------------------------------------- audit trail


@router.get("/config-changes", response_model=list[ConfigChangePublic])
def config_changes(
    session: SessionDep,
    client: Ops,
    entity: str | None = Query(default=None, description="node | channel | carrier | ..."),
    entity_id: str | None = Query(default=None, description="carriers: <carrier>/<service>"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[ConfigChangePublic]:
    """Who changed what, when, with each changed field before and after; newest first."""
    rows = changes_of(session, entity, entity_id, limit)
    return [ConfigChangePublic.model_validate(row, from_attributes=True) for row in rows]


# ---------------------------------------------------------------------------------- shared


def _spec(model: type[Spec], body: BaseModel, **path: str) -> Spec:
    """The body as the spec of the entity its path names: an id in the body must be the
    path's. A path id the spec refuses is a 422 naming it, as a body field would be."""
    for name, value in path.items():
        given = getattr(body, name)
        if given is not None and given != value:
            raise ApiError(
                422, "invalid_request", f"{name}: the body names {given}, the path {value}"
            )
    try:
        return model.model_validate(body.model_dump() | path)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


def _apply(
    engine: Engine,
    apply: Callable[[Session, list[Spec], str], Applied],
    spec: Spec,
    actor: str,
) -> Applied:
    with transaction(engine) as session:
        return apply(session, [spec], actor)


def _outcome(applied: Applied, entity_id: str, response: Response) -> Outcome:
    outcome = applied.outcome(entity_id)
    if outcome == Outcome.CREATED:
        response.status_code = 201
    return outcome
