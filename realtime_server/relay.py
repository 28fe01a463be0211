"""One client and its upstream, relayed with the limits that keep the relay cheap and fair.

Both directions are spliced (`splice.py`): upstream frames reach the client as the bytes
received, and each input is unmasked once for its checks (size, msgpack map, field types, rate)
and forwarded as the client framed it. All of it runs in the sockets' read callbacks; the
`Relay` task only opens upstream legs and ends the connection. Newest input wins while upstream
is busy; latest frame wins for a slow client. fal's realtime servers end an idle session with an
x-fal-error TIMEOUT; the relay absorbs it and reopens upstream on the next input (at once, if the
last input went unanswered).

A live session's viewers get a copy of each frame relayed to the driver (`sessions.py`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
import time
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket

from . import frames, protocol, splice, upstream
from .metrics import Metrics
from .protocol import RelayError
from .serving import SPLICE_EXTENSION, SplicedClient
from .settings import Settings

logger = logging.getLogger(__name__)
# Upstream close codes that end a session normally (then the next input reopens upstream).
_NORMAL_CLOSES = (1000, 1001)


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


def as_relay_error(exc: Exception) -> RelayError:
    """What a broken splice direction means for the client: the peer's error as the codec or a check
    raised it (a client's own code, or UPSTREAM_ERROR), or a bug (logged; the client is only told
    to reconnect)."""
    if isinstance(exc, RelayError):
        return exc
    logger.error("relay failed", exc_info=exc)
    return protocol.RelayError("the relay failed; please reconnect")


class State(enum.Enum):
    """A spliced connection's life, as websockets' `State` with who closed first told apart:

    OPEN -> CLOSING (the relay's close frame is out) -> CLOSED (the client's came back, or it cannot);
    OPEN -> CLIENT_CLOSED (the client's close frame came first) -> CLOSED (the relay's answered it);
    any -> CLOSED when the socket is gone. `SplicedConnection._enter` is the one place it changes.
    """

    OPEN = "open"
    CLIENT_CLOSED = "client closed"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS = {
    State.OPEN: {State.CLIENT_CLOSED, State.CLOSING, State.CLOSED},
    State.CLIENT_CLOSED: {State.CLOSED},
    State.CLOSING: {State.CLOSED},
    State.CLOSED: set(),
}


class SplicedConnection:
    """What a driver (`Relay`) and a live session's viewer (`sessions.Viewer`) share: a spliced client
    socket read by `reader` (whose hooks the subclass implements), its `State`, the error that ends
    it, the event that wakes the task waiting on it, and the closing handshake. Hooks run inside read
    callbacks, so they only set state and wake the task; `_close` alone turns the error into the
    x-fal-error and the close the client gets."""

    reader: splice.ClientToUpstream  # set by the subclass

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = State.OPEN
        self.error: RelayError | None = None
        self.client: SplicedClient | None = None
        self._wake = asyncio.Event()
        # How long the connection may live and the error it then ends with: app.py shortens it to
        # the ticket's expiry (TicketExpired) when that comes before RELAY_MAX_SESSION_SECONDS.
        self.lifetime = settings.max_session_seconds
        self.lifetime_error: RelayError | None = None

    @property
    def _closing(self) -> bool:
        """The relay's close frame is out (or the socket is gone): nothing more may be written."""
        return self.state is State.CLOSING or self.state is State.CLOSED

    def _enter(self, state: State) -> None:
        if state not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"a spliced connection cannot go from {self.state.value} to {state.value}")
        self.state = state

    async def _accept(self, websocket: WebSocket) -> SplicedClient:
        """Accept, and splice the socket to `reader` at once (no await may come between the two)."""
        await websocket.accept()
        client = self.client = websocket.scope["extensions"][SPLICE_EXTENSION]["start"](self.reader.feed)
        client.stalled.add_done_callback(self._stalled)
        return client

    def _expired(self) -> RelayError:
        return self.lifetime_error or protocol.SessionExpired(
            f"sessions last at most {self.settings.max_session_seconds:g} s; reconnect to go on")

    def _done(self, client: SplicedClient) -> bool:
        return (self.error is not None or self.state is not State.OPEN or client.lost.done()
                or client.shutdown.done())

    async def _wait(self, client: SplicedClient, *also: asyncio.Future[None]) -> None:
        """Until a hook wakes this task, or the client's socket (or any of `also`) goes; `_wake` is
        cleared by the caller before it checks whether to wait."""
        waiter: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([waiter, client.lost, client.shutdown, *also], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    def _close(self, client: SplicedClient, inside_message: bool = False) -> None:
        """Send the close the connection ends with: its error, 1012 at shutdown (which invites a
        reconnect), else 1000. The socket then waits for the client's closing frame (see
        `on_client_close`) unless the client already sent it or can no longer be read.

        `inside_message`: part of an upstream message went out and the rest never will. No data frame
        may follow (a browser fails that as a protocol error, 1002), a control frame may: the close
        alone goes out, its reason `CODE: reason` instead of the x-fal-error."""
        if self._closing:  # already sent, or nothing left to send it on
            return
        if client.lost.done():
            self._enter(State.CLOSED)
            return
        answering = self.state is State.CLIENT_CLOSED
        error = self.error
        if error is not None and inside_message:
            client.close(error.close_code, protocol.close_reason(f"{error.error.value}: {error.reason}"))
        elif error is not None:
            client.close(error.close_code, protocol.close_reason(error.reason), error.frame())
        elif client.shutdown.done():
            client.close(protocol.CloseCode.SERVICE_RESTART, "the relay is restarting; reconnect")
        else:
            client.close(protocol.CloseCode.NORMAL_CLOSURE)
        if answering or not self.reader.discard_until_close():
            self._enter(State.CLOSED)
            client.transport.close()
        else:
            self._enter(State.CLOSING)

    def _set_error(self, exc: RelayError) -> None:
        if self.error is None:
            self.error = exc
        self._wake.set()

    def _fail(self, exc: Exception) -> None:
        """A splice direction broke."""
        self._set_error(as_relay_error(exc))

    def _stalled(self, _: object) -> None:
        self._set_error(protocol.ClientTooSlow(
            f"nothing was read for {self.settings.send_timeout:g} s while frames waited; reconnect when ready"))

    def on_client_ping(self, payload: bytes) -> None:
        """splice.ClientHooks: keepalive is per hop, so the relay answers the client's pings itself."""
        if self.client is not None and not self._closing and not self.client.transport.is_closing():
            self._write_control(frames.frame_header(frames.OP_PONG, len(payload)) + payload)

    def _write_control(self, frame: bytes) -> None:
        """Write a control frame of the relay's own; a driver's goes between upstream frames (`Relay`)."""
        assert self.client is not None
        self.client.transport.write(frame)

    def on_client_close(self, payload: bytes) -> None:
        """splice.ClientHooks: the client's closing frame, before or after the relay's."""
        if self.state is State.OPEN:
            self._enter(State.CLIENT_CLOSED)
        elif self.state is State.CLOSING:
            self._enter(State.CLOSED)
            if self.client is not None:
                self.client.transport.close()
        self._wake.set()


class Relay(SplicedConnection):
    """Relays one driver's connection to its upstream app until either side ends or a limit trips.

    It implements the hooks of both splice directions; `run` does everything that awaits.
    """

    def __init__(self, settings: Settings, target: upstream.Target, metrics: Metrics,
                 fanout: Callable[[bytes], None] | None = None) -> None:
        super().__init__(settings)
        self.target = target
        self.metrics = metrics
        self._counts = metrics.counts
        self._fanout = fanout  # a live session's viewers, when this client drives one
        self.reader = splice.ClientToUpstream(self, settings.max_frame_bytes, on_error=self._fail)  # client -> upstream
        self.down: splice.UpstreamToClients | None = None  # the current upstream leg's frames
        self._transport: asyncio.Transport | None = None  # the current upstream leg
        self._upstream_idle = False
        self._resent = False  # the unanswered input was sent again once after an upstream TIMEOUT
        self._sent_at = 0.0  # when the oldest unanswered input came in (monotonic), for the latency histogram
        self._rate = RateLimit(settings.max_inputs_per_second)
        self._loop = asyncio.get_running_loop()
        self._last_input = time.monotonic()

    async def run(self, websocket: WebSocket) -> RelayError | None:
        """Accept, splice, relay; close the client with the error that ended it (returned) or normally."""
        client = await self._accept(websocket)
        self._idle = self._loop.call_later(self.settings.idle_timeout, self._check_idle)
        try:
            for data in client.early_inputs:  # parsed by uvicorn before the splice: framed anew
                self.on_input(data)
                self.reader.send_input(frames.masked_frame(frames.OP_BINARY, data))
            async with asyncio.timeout(self.lifetime):
                await self._relay(client)
        except TimeoutError:
            self._set_error(self._expired())
        except RelayError as exc:
            self._set_error(exc)
        except Exception as exc:  # a bug: the client still gets an x-fal-error and a close, not a dead socket
            self._fail(exc)
        finally:
            self._idle.cancel()
            # No more inputs go upstream; the client's frames are still parsed, so its close is seen.
            self.reader.discard_until_close()
            try:
                await self._close_client(client)  # may wait for the rest of a frame from upstream
            finally:
                self._publish_sink_counts()
                self._close_upstream()
                client.lost.add_done_callback(self._release)
        return self.error

    def _release(self, _: object = None) -> None:
        """Once the client's socket is gone, drop what ties the sockets to this object, so a
        finished connection is freed at once instead of waiting for the cycle collector."""
        self.client = self.down = self._transport = None
        self._idle.cancel()
        del self._idle, self.reader  # the timer's callback and the splice's hooks point back here

    def _close_upstream(self) -> None:
        """Say goodbye to the app with a close frame (masked, as a client must), then hang up."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(frames.masked_frame(frames.OP_CLOSE, struct.pack(">H", protocol.CloseCode.NORMAL_CLOSURE)))
        transport.close()

    async def _relay(self, client: SplicedClient) -> None:
        """Open upstream legs one after another: a leg ends with upstream's idle TIMEOUT, and the next
        input (or the unanswered one, at once) opens the next."""
        while True:
            transport, up = await upstream.connect(self.settings, self.target)
            self._transport = transport
            self.metrics.upstream_opens.inc()
            logger.info("upstream open app=%s", self.target.app)
            down = self.down = splice.UpstreamToClients(self, [client.sink], tap=self._fanout, on_error=self._fail)
            up.on_pause = self._upstream_paused
            self._upstream_idle = False
            up.take_buffered(down.feed)
            self.reader.attach(transport)
            await self._until(client, up.lost)
            if self._done(client):
                return
            if not self._upstream_idle:
                raise protocol.UpstreamError("upstream closed the connection unexpectedly (code 1006)")
            self._close_upstream()
            self.reader.upstream = None  # inputs wait in `pending` for the next leg
            logger.info("upstream idle app=%s; reopens on next input", self.target.app)
            if self.reader.pending is None:
                await self._until(client)
                if self._done(client):
                    return

    async def _until(self, client: SplicedClient, *also: asyncio.Future[None]) -> None:
        """Wait for a hook to wake this task, or the client's socket (or upstream's) to go."""
        self._wake.clear()
        if self._done(client) or self._upstream_idle and self.reader.pending is not None:
            return
        await self._wait(client, *also)

    async def _close_client(self, client: SplicedClient) -> None:
        down = self.down
        if down is not None and down.mid_message and not client.lost.done():
            if down.closed or self._transport is None or self._transport.is_closing():
                # Upstream broke off inside a message: between its frames a close may go, inside one nothing can.
                if down.mid_frame:
                    client.transport.abort()
                    self._enter(State.CLOSED)
                else:
                    self._close(client, inside_message=True)
                return
            # Part of an upstream message is out: close after it, or not at all if it never ends.
            stopped: asyncio.Future[None] = self._loop.create_future()
            down.stop_at_boundary(lambda: None if stopped.done() else stopped.set_result(None))
            try:
                async with asyncio.timeout(1.0):
                    await asyncio.shield(stopped)
            except TimeoutError:
                client.transport.abort()
                self._enter(State.CLOSED)
                return
        self._close(client)

    def _check_idle(self) -> None:
        """One timer per idle period instead of one per input (inputs arrive up to 60 times a second)."""
        left = self._last_input + self.settings.idle_timeout - time.monotonic()
        if left > 0:
            self._idle = self._loop.call_later(left, self._check_idle)
            return
        self._set_error(protocol.IdleTimeout(f"no input for {self.settings.idle_timeout:g} s; reconnect when needed"))

    def _upstream_paused(self, paused: bool) -> None:
        if paused:
            self.reader.upstream_paused = True
        else:
            self.reader.resume()

    def _publish_sink_counts(self) -> None:
        if self.client is None:
            return
        written, dropped = self.client.sink.take_counts()
        self._counts.frames_out += written
        self._counts.dropped_out += dropped

    # splice.ClientHooks: client -> upstream

    def on_input(self, payload: bytes, text: bool = False) -> None:
        protocol.check_input(payload, self.settings.max_frame_bytes, text=text)
        self._last_input = now = time.monotonic()
        if not self._rate.take(now):
            raise protocol.RateLimited(
                f"more than {self.settings.max_inputs_per_second:g} inputs per second; send the newest input only"
            )
        counts = self._counts
        counts.frames_in += 1
        counts.bytes_in += len(payload)
        reader = self.reader
        if reader.pending is not None and (reader.upstream is None or reader.upstream_paused):
            counts.dropped_in += 1  # the waiting input is about to be replaced by this one
        if not self._sent_at:
            self._sent_at = now
        self._resent = False
        if self._upstream_idle:
            self._wake.set()  # `run` opens the next leg; the input waits in `pending`

    def _write_control(self, frame: bytes) -> None:
        """Never inside an upstream frame that is part-way out to the client."""
        if self.down is not None and not self.down.closed:
            self.down.write_between_frames(frame)
        else:
            super()._write_control(frame)

    # splice.UpstreamHooks: upstream -> client

    def on_upstream_frame(self, length: int) -> None:
        """An output: the input waiting for one is answered (a TIMEOUT after this re-sends nothing)."""
        self.reader.unanswered = None
        counts = self._counts
        counts.frames_upstream += 1
        counts.bytes_upstream += length
        if self._sent_at:
            counts.observe_latency(time.monotonic() - self._sent_at)
            self._sent_at = 0.0
        self._publish_sink_counts()

    def on_upstream_text(self, payload: bytes) -> bool:
        text = payload.decode(errors="replace")
        control = protocol.parse_control(text)
        if control is not None and control["type"] == "x-fal-error":
            if control.get("error") == protocol.ErrorCode.TIMEOUT:
                self._absorb_timeout()
            else:
                self._set_error(UpstreamReportedError(text, control))
            return False
        if control is None:  # not the protocol's own: the output of an app that answers in JSON
            self.on_upstream_frame(len(payload))
        else:
            self._counts.frames_upstream += 1
        return True

    def _absorb_timeout(self) -> None:
        """Upstream ended an idle session: the client stays; an unanswered input is sent again, once."""
        self._upstream_idle = True
        reader = self.reader
        reader.upstream = None
        if reader.pending is None and reader.unanswered is not None and not self._resent:
            reader.pending, self._resent = reader.unanswered, True
        reader.unanswered = None
        self._sent_at = 0.0
        self._wake.set()

    def on_upstream_ping(self, payload: bytes) -> None:
        if self._transport is not None:
            self._transport.write(frames.masked_frame(frames.OP_PONG, payload))

    def on_upstream_close(self, payload: bytes) -> None:
        code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
        if self.down is not None and self.down.mid_message:  # the client's message would never end
            self._set_error(protocol.UpstreamError(f"upstream closed the connection inside a message (code {code})"))
        elif code in _NORMAL_CLOSES or code == 1005:
            if not self._upstream_idle:
                self._absorb_timeout()
        else:
            self._set_error(protocol.UpstreamError(f"upstream closed the connection unexpectedly (code {code})"))
        self._wake.set()


class UpstreamReportedError(protocol.UpstreamError):
    """Raised when the upstream app sends its own x-fal-error; the client gets that frame unchanged."""

    close_code = protocol.CloseCode.INTERNAL_ERROR

    def __init__(self, frame: str, payload: dict[str, object]) -> None:
        super().__init__(str(payload.get("reason") or "upstream reported an error"))
        self._frame = frame

    def frame(self) -> str:
        return self._frame
