"""API clients (admin only): issue a key (shown once), list them, revoke one, rotate a node or
admin key's signing secret (shown once). services.api_clients validates and audits; this module
parses, authorizes and maps, and makes this process forget a revoked or rotated key at once."""

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import EngineDep, SessionDep
from api.errors import ApiError
from api.schemas import KeyIdPath
from api.security import Admin, KeyCache, actor_of, require
from ledger.db import transaction
from security.roles import Role
from services import api_clients
from services.api_clients import ApiClientInfo, UnknownApiClient

router = APIRouter(prefix="/v1", tags=["api clients"], dependencies=[Depends(require(Role.ADMIN))])


class ApiClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=api_clients.NAME_MAX, description="who holds it")
    role: Role
    channel: str | None = Field(default=None, description="a channel key's channel (required)")
    node_id: str | None = Field(
        default=None, description="a node key's node; none: a gateway for every node"
    )


class ApiClientPublic(BaseModel):
    """Never the key's hash or a signing secret."""

    key_id: str
    name: str
    role: Role
    channel: str | None
    node_id: str | None
    signs_callbacks: bool
    active: bool
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    secret_rotated_at: datetime | None

    @classmethod
    def of(cls, info: ApiClientInfo) -> "ApiClientPublic":
        return cls(
            key_id=info.key_id,
            name=info.name,
            role=info.role,
            channel=info.channel,
            node_id=info.node_id,
            signs_callbacks=info.signs_callbacks,
            active=info.active,
            created_at=info.created_at,
            created_by=info.created_by,
            revoked_at=info.revoked_at,
            secret_rotated_at=info.secret_rotated_at,
        )


class IssuedApiKey(ApiClientPublic):
    key: str = Field(description="shown this once; only its hash is kept")
    signing_secret: str | None = Field(
        description="node and admin keys: the HMAC secret for callbacks, shown this once"
    )


class RotatedSecret(BaseModel):
    key_id: str
    signing_secret: str = Field(description="shown this once; the old secret no longer verifies")
    secret_rotated_at: datetime | None


def _not_found(exc: UnknownApiClient) -> ApiError:
    return ApiError(404, exc.code, str(exc))


def _forget(request: Request, key_id: str) -> None:
    cache: KeyCache = request.app.state.key_cache
    cache.forget(key_id)


@router.post("/api-clients", status_code=201, response_model=IssuedApiKey)
def create_api_client(body: ApiClientCreate, engine: EngineDep, caller: Admin) -> IssuedApiKey:
    with transaction(engine) as session:
        issued = api_clients.issue(
            session, body.name, body.role, body.channel, body.node_id, actor=actor_of(caller)
        )
        info = api_clients.get_client(session, issued.key_id)
    return IssuedApiKey(
        **ApiClientPublic.of(info).model_dump(),
        key=issued.key,
        signing_secret=issued.signing_secret,
    )


@router.get("/api-clients", response_model=list[ApiClientPublic])
def list_api_clients(session: SessionDep, include_revoked: bool = True) -> list[ApiClientPublic]:
    """Oldest first."""
    return [ApiClientPublic.of(c) for c in api_clients.list_clients(session, include_revoked)]


@router.post("/api-clients/{key_id}/revoke", response_model=ApiClientPublic)
def revoke_api_client(
    key_id: KeyIdPath, request: Request, engine: EngineDep, caller: Admin
) -> ApiClientPublic:
    """Refused from now on; revoking a revoked key changes nothing."""
    try:
        with transaction(engine) as session:
            info = api_clients.revoke(session, key_id, actor_of(caller))
    except UnknownApiClient as exc:
        raise _not_found(exc) from exc
    _forget(request, key_id)
    return ApiClientPublic.of(info)


@router.post("/api-clients/{key_id}/rotate-secret", response_model=RotatedSecret)
def rotate_api_client_secret(
    key_id: KeyIdPath, request: Request, engine: EngineDep, caller: Admin
) -> RotatedSecret:
    try:
        with transaction(engine) as session:
            secret = api_clients.rotate_signing_secret(session, key_id, actor_of(caller))
            info = api_clients.get_client(session, key_id)
    except UnknownApiClient as exc:
        raise _not_found(exc) from exc
    _forget(request, key_id)
    return RotatedSecret(
        key_id=key_id, signing_secret=secret, secret_rotated_at=info.secret_rotated_at
    )
