"""The roles an API key can carry; what each may do is spelled out in `api/security.py`."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    CHANNEL = "channel"
    SUPPORT = "support"
    OPS = "ops"
    NODE = "node"
