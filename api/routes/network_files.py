"""The network files (docs/network-files.md) through the API, one file at a time: the file's raw
bytes as the body, so a large one is not wrapped in JSON first. What a file names must already
be in the ledger (send carriers, nodes, skus, channels, then stock). The rules are
services.network_files'; this module authorizes and maps.

- `PUT /v1/network/files/{name}` (`nodes.csv`, `stock.json`, ...): applies the file whole or
  not at all; a refusal is a 422 whose `refused` names every refused line. `?check=true`
  validates and applies nothing.
- `GET /v1/network/files/{name}`: the file as `opendom network export` writes it.
"""

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api.deps import EngineDep
from api.errors import ApiError
from api.security import Ops, actor_of, require
from domain.network_files import FileFormat, Kind, file_kind
from security.roles import Role
from services.network_files import NetworkFilesRefused, export_file, import_file

router = APIRouter(prefix="/v1", tags=["network files"], dependencies=[Depends(require(Role.OPS))])

_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    },
}


class FileApplied(BaseModel):
    file: str
    created: int
    updated: int
    unchanged: int
    applied: bool  # false with ?check=true: validated, nothing written


async def _raw_body(request: Request) -> bytes:
    # The bytes as sent: FastAPI would parse a JSON body itself, and the file's own line
    # numbers are what refusals must name.
    return await request.body()


def _known_name(name: str) -> tuple[Kind, FileFormat]:
    found = file_kind(name)
    if found is None:
        raise ApiError(
            404,
            "not_found",
            f"no network file {name!r}: carriers, nodes, skus, channels or stock, as .csv or .json",
        )
    return found


@router.put(
    "/network/files/{name}",
    response_model=FileApplied,
    responses={422: {"description": "refused lines: nothing applied"}},
    openapi_extra={"requestBody": _BODY},
)
def put_network_file(
    name: str,
    engine: EngineDep,
    caller: Ops,
    body: Annotated[bytes, Depends(_raw_body)],
    check: Annotated[bool, Query(description="validate only, apply nothing")] = False,
) -> FileApplied | JSONResponse:
    """Apply one network file (CSV or JSON, as its name says), whole or not at all."""
    _known_name(name)
    try:
        outcome = import_file(engine, name, body, actor_of(caller), check=check)
    except NetworkFilesRefused as exc:
        return JSONResponse(
            status_code=422,
            content={"error": exc.code, "message": str(exc), "refused": exc.refused},
        )
    return FileApplied(
        file=outcome.name,
        created=outcome.created,
        updated=outcome.updated,
        unchanged=outcome.unchanged,
        applied=not check,
    )


@router.get(
    "/network/files/{name}",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
def get_network_file(name: str, engine: EngineDep) -> Response:
    """The file as `opendom network export` writes it, sorted by id."""
    kind, fmt = _known_name(name)
    out = io.StringIO()
    export_file(engine, kind, fmt, out)
    return Response(out.getvalue(), media_type=_MEDIA[fmt])
