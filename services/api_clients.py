"""API clients: who may call the API. Keys are issued (the key and any signing secret shown
once, only a hash kept), listed, revoked and their signing secrets rotated, each audited in the
configuration trail (ledger.config_audit, entity `api_client`) without the key or secret.

The API (`/v1/api-clients`, admin only) and the `opendom init` / `opendom keys` commands both
call these. A revoked key is refused at once by every API process that has not authenticated it
in the last api.security.KEY_CACHE_SECONDS; the process that revoked it forgets it at once."""

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from domain.errors import DomainError, UnknownReference
from ledger.config_audit import field_changes, record_change
from ledger.tables import ApiClient, Node
from security.keys import (
    IssuedKey,
    is_active,
    issue_key,
    replace_signing_secret,
    revoke_key,
    signs_callbacks,
)
from security.roles import Role

ENTITY = "api_client"
_CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,39}$")  # ledger Channel.channel: 40
NAME_MAX = 200


class InvalidApiClient(DomainError):
    """A key asked for with a field that does not fit its role; `field` names it."""

    code = "invalid_request"

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


class UnknownApiClient(DomainError):
    code = "unknown_api_client"

    def __init__(self, key_id: str) -> None:
        self.field = "key_id"
        self.key_id = key_id
        super().__init__(f"key_id: no API client {key_id}")


class AlreadyInitialised(DomainError):
    """`opendom init` on a database that already has an active admin key: a second admin is
    `opendom keys create --role admin`, so that one is deliberate and audited as such."""

    code = "already_initialised"

    def __init__(self, admin_key_ids: list[str]) -> None:
        self.admin_key_ids = admin_key_ids
        super().__init__(
            f"an active admin key exists already ({', '.join(admin_key_ids)}); create another "
            "with `opendom keys create --role admin --name NAME`"
        )


@dataclass(frozen=True)
class ApiClientInfo:
    """What may be shown of a client: never its key's hash or its signing secret."""

    key_id: str
    name: str
    role: Role
    channel: str | None
    node_id: str | None
    signs_callbacks: bool
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    secret_rotated_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def of(cls, client: ApiClient) -> "ApiClientInfo":
        revoked_at = client.revoked_at
        if revoked_at is None and not client.active:
            # Deactivated before the lifecycle columns existed: revoked, time unknown.
            revoked_at = client.created_at
        return cls(
            key_id=client.key_id,
            name=client.name,
            role=Role(client.role),
            channel=client.channel,
            node_id=client.node_id,
            signs_callbacks=client.signing_secret is not None,
            created_at=client.created_at,
            created_by=client.created_by,
            revoked_at=revoked_at,
            secret_rotated_at=client.secret_rotated_at,
        )


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidApiClient(
            "role", f"'{role}' is not one of {', '.join(r.value for r in Role)}"
        ) from None


def _validated(
    session: Session, name: str, role: Role | str, channel: str | None, node_id: str | None
) -> tuple[str, Role, str | None, str | None]:
    name = name.strip()
    if not name:
        raise InvalidApiClient("name", "must not be empty (say who holds the key)")
    if len(name) > NAME_MAX:
        raise InvalidApiClient("name", f"at most {NAME_MAX} characters")
    checked = _role(role)
    channel = channel.strip() if channel else None
    node_id = node_id.strip() if node_id else None
    if checked == Role.CHANNEL:
        if channel is None:
            raise InvalidApiClient("channel", "a channel key needs the channel it acts for")
        if not _CHANNEL.match(channel):
            raise InvalidApiClient(
                "channel", f"'{channel}' is not a channel id (letters, digits, ._:/-; max 40)"
            )
    elif channel is not None:
        raise InvalidApiClient("channel", f"only a channel key names a channel, not a {checked}")
    if checked == Role.NODE:
        if node_id is not None and session.get(Node, node_id) is None:
            raise UnknownReference("node_id", [node_id])
    elif node_id is not None:
        raise InvalidApiClient("node_id", f"only a node key names a node, not a {checked}")
    return name, checked, channel, node_id


def issue(
    session: Session,
    name: str,
    role: Role | str,
    channel: str | None = None,
    node_id: str | None = None,
    *,
    actor: str,
) -> IssuedKey:
    """A new key, validated before anything is written. A node key without a node is a gateway
    that may call back for every node. The key (and a node or admin key's signing secret) is in
    the result only: show it once."""
    name, checked, channel, node_id = _validated(session, name, role, channel, node_id)
    issued = issue_key(session, name, checked, channel=channel, node_id=node_id, created_by=actor)
    record_change(
        session,
        ENTITY,
        issued.key_id,
        "create",
        actor,
        field_changes(
            None,
            {
                "name": name,
                "role": checked,
                "channel": channel,
                "node_id": node_id,
                "signs_callbacks": issued.signing_secret is not None,
            },
        ),
    )
    return issued


def active_admins(session: Session) -> list[str]:
    query = select(ApiClient).where(col(ApiClient.role) == Role.ADMIN.value)
    return [c.key_id for c in session.exec(query).all() if is_active(c)]


def initialise(session: Session, *, actor: str, name: str = "first admin") -> IssuedKey:
    """The first admin key of a deployment; AlreadyInitialised once any admin key is active."""
    admins = active_admins(session)
    if admins:
        raise AlreadyInitialised(admins)
    return issue(session, name, Role.ADMIN, actor=actor)


def list_clients(session: Session, include_revoked: bool = True) -> list[ApiClientInfo]:
    """Oldest first."""
    query = select(ApiClient).order_by(col(ApiClient.created_at), col(ApiClient.key_id))
    clients = [ApiClientInfo.of(c) for c in session.exec(query).all()]
    return clients if include_revoked else [c for c in clients if c.active]


def get_client(session: Session, key_id: str) -> ApiClientInfo:
    return ApiClientInfo.of(_client(session, key_id))


def _client(session: Session, key_id: str) -> ApiClient:
    client = session.get(ApiClient, key_id)
    if client is None:
        raise UnknownApiClient(key_id)
    return client


def revoke(session: Session, key_id: str, actor: str) -> ApiClientInfo:
    """From this commit on the key is refused (see the module's note on cached keys). Revoking
    a revoked key changes nothing and writes no audit entry."""
    client = _client(session, key_id)
    if revoke_key(client):
        session.add(client)
        record_change(
            session,
            ENTITY,
            key_id,
            "revoke",
            actor,
            field_changes(
                {"active": True, "revoked_at": None},
                {"active": False, "revoked_at": client.revoked_at},
            ),
        )
        session.flush()
    return ApiClientInfo.of(client)


def rotate_signing_secret(session: Session, key_id: str, actor: str) -> str:
    """A new signing secret for a node or admin key, returned once; callbacks signed with the
    old one are refused from this commit on. The audit records that and when, never a secret."""
    client = _client(session, key_id)
    if not is_active(client):
        raise InvalidApiClient("key_id", f"{key_id} is revoked; issue a new key instead")
    if not signs_callbacks(Role(client.role)):
        raise InvalidApiClient(
            "role", f"a {client.role} key signs no callbacks, so it has no secret to rotate"
        )
    before = client.secret_rotated_at
    secret = replace_signing_secret(client)
    session.add(client)
    record_change(
        session,
        ENTITY,
        key_id,
        "rotate",
        actor,
        field_changes(
            {"secret_rotated_at": before}, {"secret_rotated_at": client.secret_rotated_at}
        ),
    )
    session.flush()
    return secret
