"""`local/echo`: a real fal app (fal's server SDK, `@fal.realtime`) that answers each input at once.

It exists for the latency benchmark (`realtime-bench`): each input `{size, seq}` is answered with
`{seq, pad, timings}` where `pad` is `size` zero bytes and `timings.inference` the handler's own time,
so a round trip measures transport, not rendering.
It is served exactly as `local/preview` is (same SDK, same gateway), so the routes under test see
the frames a real fal app sends.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import fal
from pydantic import BaseModel, Field

MAX_ECHO_BYTES = 8 * 1024 * 1024


class EchoInput(BaseModel):
    size: int = Field(65536, ge=0, le=MAX_ECHO_BYTES)
    seq: int = 0
    note: bytes | None = None  # ignored; lets the benchmark size its inputs like real prompts
    image_bytes: bytes | None = None  # ignored; an image-to-image stream's input frame (realtime-bench's image points)


@functools.lru_cache(maxsize=16)
def _pad(size: int) -> bytes:
    # Cached so the upstream's own cost per frame stays small and the same on every route.
    return bytes(size)


def make_echo_app(session_timeout: float) -> type[fal.App]:
    """Build the app class; `session_timeout` is how long it waits for input before ending a session."""

    class LocalEcho(fal.App, name="echo"):  # type: ignore[no-untyped-call]
        # buffering=None: fal's unary loop then queues every input (an unbounded deque), so each
        # input gets its answer; a coroutine runs on the event loop, not in a thread pool.
        @fal.realtime("/realtime", buffering=None, session_timeout=session_timeout)
        async def realtime(self, input: EchoInput) -> dict[str, Any]:
            started = time.perf_counter()
            pad = _pad(input.size)
            # What fal's apps report as `timings`: here, the handler's own time, in seconds.
            return {"seq": input.seq, "pad": pad, "timings": {"inference": time.perf_counter() - started}}

    return LocalEcho
