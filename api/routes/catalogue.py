"""The catalogue over HTTP: SKUs one at a time, and a PIM's push of a batch of them. The rules are
services.catalogue's; this module parses, authorizes (admin, ops, as the stock feeds), calls it
in a transaction of its own and maps.

A PUT carries the SKU's whole specification, keyed by the SKU in its path (the body may repeat
it, or leave it out): applying the same body again changes nothing and records nothing. A push is
idempotent by the PIM's event id, and all or nothing: one refused item (named by its index and
field, `items[17].weight_kg: ...`) and nothing is applied."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session

from api.deps import EngineDep, SessionDep
from api.errors import ApiError
from api.schemas import SourcePath
from api.security import Ops, actor_of
from domain.configuration import Identifier, Outcome, SkuSpec
from ledger.db import transaction
from ledger.tables import ApiClient, Sku
from services import catalogue

router = APIRouter(prefix="/v1", tags=["catalogue"])

SkuPath = Annotated[str, Path(min_length=1, max_length=64)]
MAX_PUSHED_ITEMS = 50_000


class SkuBody(SkuSpec):
    sku: Identifier | None = None  # the path's


class SkuPublic(SkuSpec):
    """The SKU as stored: its specification (PUT it back and nothing changes), and when it
    last changed."""

    updated_at: datetime


class SkuApplied(SkuPublic):
    outcome: Outcome


class SkuPage(BaseModel):
    items: list[SkuPublic]
    next_after: str | None = Field(
        description="pass as `after` for the next page; null: this was the last"
    )


class CataloguePush(BaseModel):
    event_id: str = Field(min_length=1, max_length=200, description="the PIM's own id")
    items: list[dict[str, Any]] = Field(
        max_length=MAX_PUSHED_ITEMS, description="SKU specifications, as PUT /v1/skus/{sku}"
    )


class CataloguePushResult(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: int
    replayed: bool = Field(description="this source sent this event before: nothing was done")


# ------------------------------------------------------------------------------ a PIM's push


@router.post("/feeds/{source}/catalogue", response_model=CataloguePushResult)
def push_catalogue(
    source: SourcePath, body: CataloguePush, engine: EngineDep, client: Ops
) -> CataloguePushResult:
    """A PIM's batch of SKU specifications, applied once per event id (a replay answers
    `replayed: true` and changes nothing), all or nothing. Deactivate a SKU with
    `active: false`: it is then refused by orders and checkout, and still fed stock."""
    specs = catalogue.parse_sku_specs(body.items)  # InvalidSkuSpecs: 422 naming every item
    with transaction(engine) as session:
        outcome = catalogue.push_catalogue(session, source, body.event_id, specs, actor_of(client))
    return CataloguePushResult(
        created=outcome.created,
        updated=outcome.updated,
        unchanged=outcome.unchanged,
        replayed=outcome.replayed,
    )


# -------------------------------------------------------------------------------------- SKUs


@router.put(
    "/skus/{sku}",
    response_model=SkuApplied,
    responses={201: {"model": SkuApplied, "description": "Created"}},
)
def put_sku(
    sku: SkuPath, body: SkuBody, response: Response, engine: EngineDep, client: Ops
) -> SkuApplied:
    """Create (201) or update (200) the SKU from its whole specification."""
    spec = _spec(body, sku)
    with transaction(engine) as session:
        applied = catalogue.apply_skus(session, [spec], actor_of(client))
        row = _sku_row(session, sku)
        stored = _public(row)
    outcome = applied.outcome(sku)
    if outcome == Outcome.CREATED:
        response.status_code = 201
    return SkuApplied(**stored.model_dump(), outcome=outcome)


@router.get("/skus/{sku}", response_model=SkuPublic)
def get_sku(sku: SkuPath, session: SessionDep, client: Ops) -> SkuPublic:
    return _public(_sku_row(session, sku))


@router.get("/skus", response_model=SkuPage)
def list_skus(
    session: SessionDep,
    client: Ops,
    active: bool | None = None,
    after: Annotated[str | None, Query(max_length=64, description="the last SKU seen")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SkuPage:
    """SKUs in SKU order, a page at a time; `active` to see only active or inactive ones."""
    rows = catalogue.list_skus(session, active, after, limit + 1)
    page = rows[:limit]
    return SkuPage(
        items=[_public(r) for r in page], next_after=page[-1].sku if len(rows) > limit else None
    )


def _sku_row(session: Session, sku: str) -> Sku:
    row = catalogue.get_sku(session, sku)
    if row is None:
        raise ApiError(404, "unknown_sku", f"no SKU {sku}")
    return row


def _public(row: Sku) -> SkuPublic:
    return SkuPublic(**catalogue.sku_spec(row).model_dump(), updated_at=row.updated_at)


def _spec(body: SkuBody, sku: str) -> SkuSpec:
    """The body as the spec of the SKU its path names: a SKU in the body must be the path's.
    A path SKU the spec refuses is a 422 naming it, as a body field would be."""
    if body.sku is not None and body.sku != sku:
        raise ApiError(422, "invalid_request", f"sku: the body names {body.sku}, the path {sku}")
    try:
        return SkuSpec.model_validate(body.model_dump() | {"sku": sku})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


def _actor(client: ApiClient) -> str:
    return f"key:{client.key_id} {client.name}"
