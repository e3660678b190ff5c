"""Callback signatures: HMAC-SHA256 over `timestamp.body` with the caller's signing secret."""

import hashlib
import hmac


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_is_valid(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    # compare_digest raises TypeError on a non-ASCII str: a forged header is just not valid.
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
