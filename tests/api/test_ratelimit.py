"""The token bucket itself, on a hand-driven clock."""

from __future__ import annotations

import pytest

from allegiance.api.ratelimit import RateLimiter, TooManyRequests


def test_a_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_second=2, burst=3, now=lambda: now[0])
    for _ in range(3):
        limiter.take("k")
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("k")
    assert refused.value.data["retry_after"] == 1
    limiter.take("other key")  # buckets are per key
    now[0] += 0.5  # one token back
    limiter.take("k")
    with pytest.raises(TooManyRequests):
        limiter.take("k")


def test_a_zero_rate_turns_limiting_off() -> None:
    limiter = RateLimiter(per_second=0, burst=1)
    for _ in range(1000):
        limiter.take("k")
