"""Per-key token buckets: a burst from one API key is answered 429 with ``Retry-After``.

In-process (each server process keeps its own buckets), which is enough to stop one client from
starving the others on a node; a shared store (Redis) is the step for several nodes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from allegiance.kernel.errors import AllegianceError


class TooManyRequests(AllegianceError):
    code = "too_many_requests"
    status = 429


class RateLimiter:
    def __init__(self, per_second: float, burst: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self.now = now
        self._buckets: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def take(self, key: object) -> None:
        """Spend one token of ``key``'s bucket or raise ``TooManyRequests`` saying when to retry."""
        if not self.enabled:
            return
        with self._lock:
            now = self.now()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.per_second)
                raise TooManyRequests(f"more than {self.per_second:g} requests per second from this key",
                                      retry_after=max(1, wait))
            self._buckets[key] = (tokens - 1, now)
