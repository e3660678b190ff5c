"""Requests per second per API key: a token bucket per key, kept in this process.

In process on purpose: no shared store to run or to fail. The price is that N API processes
let one key make N times the limit; the limit stops a runaway or abusive client from taking
one process's capacity from everyone else, it is not a quota."""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from config import Settings
from security.roles import Role

# The keys that carry the traffic: a storefront's checkout checks, a node gateway's callbacks.
TRAFFIC_ROLES = frozenset({Role.CHANNEL, Role.NODE})


@dataclass(frozen=True)
class Limit:
    per_second: float  # 0: no limit
    burst: int

    def describe(self) -> str:
        return f"{self.per_second:g} requests a second (bursts of {self.burst})"


@dataclass(frozen=True)
class RateLimits:
    people: Limit  # admin, ops, support keys
    traffic: Limit  # channel and node keys

    @classmethod
    def from_settings(cls, settings: Settings) -> "RateLimits":
        return cls(
            people=Limit(settings.rate_limit_per_second, settings.rate_limit_burst),
            traffic=Limit(
                settings.traffic_rate_limit_per_second, settings.traffic_rate_limit_burst
            ),
        )

    def for_role(self, role: str) -> Limit:
        return self.traffic if role in TRAFFIC_ROLES else self.people


class TokenBuckets:
    """One bucket per key id (bounded by the keys issued: only authenticated keys get one)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, as of)
        # The sync routes' threads do not touch it, but the lock keeps take() whole if one did.
        self._lock = threading.Lock()

    def take(self, key_id: str, limit: Limit) -> float:
        """0 if the request may go ahead (a token spent); else the seconds until one is due."""
        if limit.per_second <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, as_of = self._buckets.get(key_id, (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - as_of) * limit.per_second)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / limit.per_second


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After takes whole seconds: rounded up, so a client that obeys it is let through."""
    return str(max(1, math.ceil(wait_seconds)))
