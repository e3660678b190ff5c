"""API keys: issued once, stored hashed, checked in constant time; replayed callbacks refused."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ledger.tables import ApiClient, CallbackSignature
from security.roles import Role

KEY_PREFIX = "odk"


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str  # shown once; never stored
    signing_secret: str | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(
    session: Session,
    name: str,
    role: Role,
    channel: str | None = None,
    node_id: str | None = None,
) -> IssuedKey:
    key_id = secrets.token_hex(8)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    signing_secret = secrets.token_urlsafe(32) if role in (Role.NODE, Role.ADMIN) else None
    session.add(
        ApiClient(
            key_id=key_id,
            name=name,
            role=role,
            channel=channel,
            node_id=node_id,
            key_hash=_hash(key),
            signing_secret=signing_secret,
        )
    )
    session.flush()
    return IssuedKey(key_id=key_id, key=key, signing_secret=signing_secret)


def authenticate(session: Session, key: str) -> ApiClient | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    client = session.get(ApiClient, parts[1])
    if client is None or not client.active:
        return None
    return client if hmac.compare_digest(client.key_hash, _hash(key)) else None


def remember_signature(session: Session, signature: str) -> bool:
    """False if this exact signed callback was accepted before (a replay)."""
    try:
        with session.begin_nested():
            session.add(CallbackSignature(signature=signature))
        return True
    except IntegrityError:
        return False
