"""The idle limit: a driver that sends no input for RELAY_IDLE_TIMEOUT seconds is let go (IDLE_TIMEOUT).

Inputs arrive up to 60 times a second, so an input only notes its time in `last_input`; one timer
runs per idle period and, when it fires early, waits again for what is left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class IdleTimer:
    """Calls `on_idle` once no input has been noted for `timeout` seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, on_idle: Callable[[], None]) -> None:
        self.last_input = time.monotonic()  # the caller sets it at each input (a monotonic time)
        self._loop = loop
        self._timeout = timeout
        self._on_idle = on_idle
        self._handle = loop.call_later(timeout, self._check)

    def cancel(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        left = self.last_input + self._timeout - time.monotonic()
        if left > 0:
            self._handle = self._loop.call_later(left, self._check)
        else:
            self._on_idle()
