"""The pumps between one client and its upstream, with the limits that keep them cheap.

Client -> upstream: each input is checked (size, msgpack map, field types, rate) and put in a
one-slot mailbox, so while the upstream socket is busy the newest input wins.
Upstream -> client: frames go out as the bytes received into an `Outbox` of two, so a slow
reader skips frames instead of growing memory. fal's realtime servers end an idle session with
an x-fal-error TIMEOUT; the relay absorbs it and reopens upstream on the next input.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection

from . import protocol, upstream
from .metrics import Metrics
from .protocol import RelayError
from .settings import Settings

logger = logging.getLogger(__name__)

Frame = bytes | str
# First byte of a msgpack map: fixmap, map16 or map32.
_MAP_MARKERS = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}


class UpstreamState(enum.Enum):
    """Where the upstream leg is; transitions happen only in `Relay._pump_upstream`."""

    OPENING = "opening"
    OPEN = "open"
    IDLE = "idle"  # upstream ended an idle session; reopened on the next input


class OutboxClosed(Exception):
    """Raised by `Outbox.get` once the outbox is closed and empty."""


class Outbox:
    """Frames waiting for one receiver; beyond `size`, the oldest is dropped (latest frame wins)."""

    def __init__(self, size: int = 2) -> None:
        self._frames: deque[Frame] = deque()
        self._size = size
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, frame: Frame) -> bool:
        """Queue `frame`; return True when an older frame had to be dropped for it."""
        dropped = len(self._frames) >= self._size
        if dropped:
            self._frames.popleft()
        self._frames.append(frame)
        self._ready.set()
        return dropped

    async def get(self) -> Frame:
        while not self._frames:
            if self._closed:
                raise OutboxClosed
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def close(self) -> None:
        """No more frames will come; `get` raises `OutboxClosed` once the queued ones are taken."""
        self._closed = True
        self._ready.set()


async def first_completed(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run the pumps of one connection until the first ends; cancel the rest; re-raise what ended it."""
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, WebSocketDisconnect, RelayError):
                await task
    for task in done:
        task.result()


class RateLimit:
    """Token bucket: `rate` inputs per second on average, bursts of up to one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(rate, 1.0)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass
class ConnectionLimits:
    """Counts open connections per user and in total; `admit` raises when one is full."""

    settings: Settings
    per_user: dict[str, int] = field(default_factory=dict)
    total: int = 0

    @contextmanager
    def admit(self, sub: str) -> Iterator[None]:
        if self.total >= self.settings.max_connections:
            raise protocol.TooManyConnections(
                f"relay is at its limit of {self.settings.max_connections} connections; retry shortly"
            )
        if self.per_user.get(sub, 0) >= self.settings.max_connections_per_user:
            raise protocol.TooManyConnections(
                f"you already have {self.settings.max_connections_per_user} open connections; close one first"
            )
        self.total += 1
        self.per_user[sub] = self.per_user.get(sub, 0) + 1
        try:
            yield
        finally:
            self.total -= 1
            self.per_user[sub] -= 1
            if not self.per_user[sub]:
                del self.per_user[sub]


class Relay:
    """Relays one client connection to its upstream app until either side ends or a limit trips."""

    def __init__(
        self,
        client: WebSocket,
        settings: Settings,
        target: upstream.Target,
        metrics: Metrics,
        fanout: Callable[[Frame], None] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.target = target
        self.metrics = metrics
        self.outbox = Outbox()
        self._fanout = fanout  # a live session's viewers, when this client drives one
        self.upstream_state = UpstreamState.OPENING
        self._pending: bytes | None = None  # newest input not yet sent upstream
        self._unanswered: bytes | None = None  # last input sent that no output has answered yet
        self._input_ready = asyncio.Event()
        self._sent_at: deque[float] = deque(maxlen=64)
        self._rate = RateLimit(settings.max_inputs_per_second)
        self._loop = asyncio.get_running_loop()
        self._last_input = self._loop.time()

    async def run(self) -> None:
        """Pump both ways; return when the client leaves, raise `RelayError` when something trips."""
        await first_completed(self._read_client(), self._pump_upstream(), self._write_client(), self._watch_idle())

    # client -> relay

    async def _read_client(self) -> None:
        while True:
            message = await self.client.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                raise protocol.BadFrame("expected a binary msgpack frame, got a text frame")
            self.accept_input(data)

    async def _watch_idle(self) -> None:
        """One timer per idle period instead of one per input (inputs arrive up to 60 times a second)."""
        while (remaining := self._last_input + self.settings.idle_timeout - self._loop.time()) > 0:
            await asyncio.sleep(remaining)
        raise protocol.IdleTimeout(f"no input for {self.settings.idle_timeout:g} s; reconnect when needed")

    def accept_input(self, data: bytes) -> None:
        protocol.check_input(data, self.settings.max_frame_bytes)
        self._last_input = self._loop.time()
        if not self._rate.take():
            raise protocol.RateLimited(
                f"more than {self.settings.max_inputs_per_second:g} inputs per second; send the newest input only"
            )
        self.metrics.frames_in.inc()
        self.metrics.bytes_in.inc(len(data))
        if self._pending is not None:
            self.metrics.dropped_in.inc()
        self._pending = data
        self._input_ready.set()

    # relay <-> upstream

    async def _pump_upstream(self) -> None:
        resent = False
        while True:
            if self.upstream_state is UpstreamState.IDLE:
                if self._pending is None and self._unanswered is not None and not resent:
                    # Upstream idled out before answering the last input: send it again, once, right away.
                    self._pending, resent = self._unanswered, True
                else:
                    await self._input_ready.wait()
                    resent = False
                self._unanswered = None
            self.upstream_state = UpstreamState.OPENING
            conn = await upstream.connect(self.settings, self.target)
            self.metrics.upstream_opens.inc()
            self.upstream_state = UpstreamState.OPEN
            logger.info("upstream open app=%s", self.target.app)
            sender = asyncio.create_task(self._send_upstream(conn))
            receiver = asyncio.create_task(self._receive_upstream(conn))
            try:
                await asyncio.wait([sender, receiver], return_when=asyncio.FIRST_COMPLETED)
                if sender.done():
                    sender.result()
                async with asyncio.timeout(self.settings.upstream_open_timeout):
                    await receiver  # returns when upstream idled out; raises on failure
            finally:
                sender.cancel()
                receiver.cancel()
                await asyncio.gather(sender, receiver, return_exceptions=True)
                await conn.close()
            self.upstream_state = UpstreamState.IDLE
            self._sent_at.clear()
            logger.info("upstream idle app=%s; reopens on next input", self.target.app)

    async def _send_upstream(self, conn: ClientConnection) -> None:
        while True:
            if self._pending is None:
                self._input_ready.clear()
                await self._input_ready.wait()
                continue
            frame, self._pending = self._pending, None
            try:
                await conn.send(frame)
            except websockets.ConnectionClosed:
                if self._pending is None:
                    self._pending = frame
                return
            self._unanswered = frame
            self._sent_at.append(time.perf_counter())

    async def _receive_upstream(self, conn: ClientConnection) -> None:
        try:
            async for frame in conn:
                if isinstance(frame, bytes):
                    if not frame or frame[0] not in _MAP_MARKERS:
                        raise protocol.UpstreamError("upstream sent a binary frame that is not a msgpack map")
                    self._unanswered = None
                    if self._sent_at:
                        self.metrics.latency.observe(time.perf_counter() - self._sent_at.popleft())
                    self._broadcast(frame)
                    continue
                control = protocol.parse_control(frame)
                if control is not None and control["type"] == "x-fal-error":
                    if control.get("error") == protocol.ErrorCode.TIMEOUT:
                        return
                    raise UpstreamReportedError(frame, control)
                self._broadcast(frame)
        except websockets.ConnectionClosedOK:
            return
        except websockets.ConnectionClosedError as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            raise protocol.UpstreamError(f"upstream closed the connection unexpectedly (code {code})") from None

    def _broadcast(self, frame: Frame) -> None:
        if self.outbox.put(frame):
            self.metrics.dropped_out.inc()
        if self._fanout is not None:
            self._fanout(frame)
        self.metrics.frames_upstream.inc()
        self.metrics.bytes_upstream.inc(len(frame))

    # relay -> client

    async def _write_client(self) -> None:
        while True:
            frame = await self.outbox.get()
            if isinstance(frame, bytes):
                await self.client.send_bytes(frame)
            else:
                await self.client.send_text(frame)
            self.metrics.frames_out.inc()


class UpstreamReportedError(protocol.UpstreamError):
    """Raised when the upstream app sends its own x-fal-error; the client gets that frame unchanged."""

    close_code = protocol.CloseCode.INTERNAL_ERROR

    def __init__(self, frame: str, payload: dict[str, object]) -> None:
        super().__init__(str(payload.get("reason") or "upstream reported an error"))
        self._frame = frame

    def frame(self) -> str:
        return self._frame
