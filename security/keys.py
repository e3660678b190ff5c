"""API keys: issued once, stored hashed, checked in constant time; replayed callbacks refused.

The primitives only: services.api_clients validates, audits and revokes with them."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ledger.tables import ApiClient, CallbackSignature, utcnow
from security.roles import Role

KEY_PREFIX = "odk"


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str  # shown once; never stored
    signing_secret: str | None


def signs_callbacks(role: Role) -> bool:
    """Node systems sign their callbacks; an admin key may too (support tools, tests)."""
    return role in (Role.NODE, Role.ADMIN)


def new_signing_secret() -> str:
    return secrets.token_urlsafe(32)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(
    session: Session,
    name: str,
    role: Role,
    channel: str | None = None,
    node_id: str | None = None,
    created_by: str | None = None,
) -> IssuedKey:
    key_id = secrets.token_hex(8)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    signing_secret = new_signing_secret() if signs_callbacks(role) else None
    session.add(
        ApiClient(
            key_id=key_id,
            name=name,
            role=role,
            channel=channel,
            node_id=node_id,
            key_hash=_hash(key),
            signing_secret=signing_secret,
            created_by=created_by,
        )
    )
    session.flush()
    return IssuedKey(key_id=key_id, key=key, signing_secret=signing_secret)


def authenticate(session: Session, key: str) -> ApiClient | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    client = session.get(ApiClient, parts[1])
    if client is None or not is_active(client):
        return None
    return client if hmac.compare_digest(client.key_hash, _hash(key)) else None


def is_active(client: ApiClient) -> bool:
    return client.active and client.revoked_at is None


def revoke_key(client: ApiClient) -> bool:
    """False if it was revoked already (its first revocation time is kept)."""
    if not is_active(client):
        return False
    client.active = False
    client.revoked_at = utcnow()
    return True


def replace_signing_secret(client: ApiClient) -> str:
    """A new secret for the key's callbacks; the old one stops verifying once this commits."""
    client.signing_secret = new_signing_secret()
    client.secret_rotated_at = utcnow()
    return client.signing_secret


def remember_signature(session: Session, signature: str) -> bool:
    """False if this exact signed callback was accepted before (a replay)."""
    try:
        with session.begin_nested():
            session.add(CallbackSignature(signature=signature))
        return True
    except IntegrityError:
        return False


def forget_signatures_received_before(session: Session, cutoff: datetime, batch: int) -> int:
    """Forgets up to `batch` signatures accepted before `cutoff`; returns how many."""
    oldest = (
        select(CallbackSignature.signature)
        .where(col(CallbackSignature.received_at) < cutoff)
        .limit(batch)
    )
    signatures = list(session.exec(oldest).all())
    if signatures:
        session.execute(
            delete(CallbackSignature).where(col(CallbackSignature.signature).in_(signatures))
        )
    return len(signatures)
