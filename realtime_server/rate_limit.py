"""The input rate limit: RELAY_MAX_INPUTS_PER_SECOND per connection, as a token bucket.

A client may send faster for a moment (a slider dragged, a burst after a stall) but not for
long: over the limit it is told RATE_LIMITED, to send only its newest input.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimit:
    """Token bucket: `rate` inputs per second on average, bursts of up to one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(rate, 1.0)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()

    def take(self, now: float | None = None) -> bool:
        """Spend one token if there is one; `now` saves a clock read when the caller has one."""
        if now is None:
            now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
