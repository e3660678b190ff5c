"""Callback signatures: HMAC-SHA256 over `timestamp.body` with the caller's signing secret."""

import hashlib
import hmac

# A callback is refused when its timestamp is further than this from the receiver's clock.
SIGNATURE_MAX_AGE_SECONDS = 300
# How long an accepted signature is remembered to refuse its replay. One received at R carries
# a timestamp no older than R - max age, so its replay is stale from R + 2 x max age on; the
# margin covers clocks that differ between API processes.
SIGNATURE_RETENTION_SECONDS = 2 * SIGNATURE_MAX_AGE_SECONDS + 600


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_is_valid(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    # compare_digest raises TypeError on a non-ASCII str: a forged header is just not valid.
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
