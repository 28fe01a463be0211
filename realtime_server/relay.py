"""One driver's connection and its upstream, relayed with the limits that keep the relay cheap and fair.

Both directions are spliced (`splice`): upstream frames reach the client as the bytes received,
and each input is unmasked once for its checks (size, msgpack map, field types, rate) and sent
upstream under the relay's own mask. All of it runs in the sockets' read callbacks; the `Relay`
task only opens upstream legs and ends the connection. It composes the policies, each in its own
module: the input rate (`rate_limit`), the idle limit (`idle`) and fal's idle TIMEOUT, absorbed
(`upstream_timeout`). A live session's viewers get a copy of each frame relayed to the driver
(`sessions`).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable

from starlette.websockets import WebSocket

from . import frames, protocol, splice, upstream
from .connection import SplicedConnection, State
from .idle import IdleTimer
from .metrics import Metrics
from .protocol import RelayError
from .rate_limit import RateLimit
from .serving import SplicedClient
from .settings import Settings
from .upstream_timeout import IdleUpstream

logger = logging.getLogger(__name__)
# Upstream close codes that end a session normally (then the next input reopens upstream).
_NORMAL_CLOSES = (1000, 1001)


class Relay(SplicedConnection):
    """Relays one driver's connection to its upstream app until either side ends or a limit trips.

    It is the hooks of both splice directions (`splice.ClientHooks`, `splice.UpstreamHooks`) and
    counts what passes for the metrics; `run` does everything that awaits.
    """

    def __init__(self, settings: Settings, target: upstream.Target, metrics: Metrics,
                 fanout: Callable[[bytes], None] | None = None) -> None:
        super().__init__(settings)
        self.target = target
        self.metrics = metrics
        self._counts = metrics.counts
        self._fanout = fanout  # a live session's viewers, when this client drives one
        self.from_client = splice.ClientToUpstream(self, settings.max_frame_bytes, on_error=self._fail)
        self.from_upstream: splice.UpstreamToClients | None = None  # the current upstream leg's frames
        self._transport: asyncio.Transport | None = None  # the current upstream leg
        self._idle_upstream = IdleUpstream()
        self._sent_at = 0.0  # when the oldest unanswered input came in (monotonic), for the latency histogram
        self._rate = RateLimit(settings.max_inputs_per_second)
        self._loop = asyncio.get_running_loop()

    async def run(self, websocket: WebSocket) -> RelayError | None:
        """Accept, splice, relay; close the client with the error that ended it (returned) or normally."""
        client = await self._accept(websocket)
        self._idle = IdleTimer(self._loop, self.settings.idle_timeout, self._on_idle)
        try:
            for data in client.early_inputs:  # parsed by uvicorn before the splice: framed anew
                self.on_input(data)
                self.from_client.send_input(frames.masked_frame(frames.OP_BINARY, data))
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
            self.from_client.discard_until_close()
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
        self.client = self.from_upstream = self._transport = None
        self._idle.cancel()
        del self._idle, self.from_client  # the timer's callback and the splice's hooks point back here

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
        inputs = self.from_client
        while True:
            transport, up = await upstream.connect(self.settings, self.target)
            self._transport = transport
            self.metrics.upstream_opens.inc()
            logger.info("upstream open app=%s", self.target.app)
            outputs = self.from_upstream = splice.UpstreamToClients(self, [client.sink], tap=self._fanout,
                                                                    on_error=self._fail)
            up.on_pause = self._upstream_paused
            self._idle_upstream.leg_opened()
            up.take_buffered(outputs.feed)
            inputs.attach(transport)
            await self._until(client, up.lost)
            if self._done(client):
                return
            if not self._idle_upstream.ended:
                raise protocol.UpstreamError("upstream closed the connection unexpectedly (code 1006)")
            self._close_upstream()
            inputs.upstream = None  # inputs wait in `pending` for the next leg
            logger.info("upstream idle app=%s; reopens on next input", self.target.app)
            if inputs.pending is None:
                await self._until(client)
                if self._done(client):
                    return

    async def _until(self, client: SplicedClient, *also: asyncio.Future[None]) -> None:
        """Wait for a hook to wake this task, or the client's socket (or upstream's) to go."""
        self._wake.clear()
        if self._done(client) or self._idle_upstream.ended and self.from_client.pending is not None:
            return
        await self._wait(client, *also)

    async def _close_client(self, client: SplicedClient) -> None:
        """Close the client, never inside an upstream message that is part-way out to it."""
        outputs = self.from_upstream
        if outputs is not None and outputs.mid_message and not client.lost.done():
            if outputs.closed or self._transport is None or self._transport.is_closing():
                # Upstream broke off inside a message: between its frames a close may go, inside one nothing can.
                if outputs.mid_frame:
                    client.transport.abort()
                    self._enter(State.CLOSED)
                else:
                    self._close(client, inside_message=True)
                return
            # Part of an upstream message is out: close after it, or not at all if it never ends.
            stopped: asyncio.Future[None] = self._loop.create_future()
            outputs.stop_at_boundary(lambda: None if stopped.done() else stopped.set_result(None))
            try:
                async with asyncio.timeout(1.0):
                    await asyncio.shield(stopped)
            except TimeoutError:
                client.transport.abort()
                self._enter(State.CLOSED)
                return
        self._close(client)

    def _on_idle(self) -> None:
        self._set_error(protocol.IdleTimeout(f"no input for {self.settings.idle_timeout:g} s; reconnect when needed"))

    def _upstream_paused(self, paused: bool) -> None:
        if paused:
            self.from_client.upstream_paused = True
        else:
            self.from_client.resume()

    def _publish_sink_counts(self) -> None:
        if self.client is None:
            return
        written, dropped = self.client.sink.take_counts()
        self._counts.frames_out += written
        self._counts.dropped_out += dropped

    # splice.ClientHooks: client -> upstream

    def on_input(self, payload: bytes, text: bool = False) -> None:
        """Check an input and count it; raise to refuse it (the connection ends with that error)."""
        protocol.check_input(payload, self.settings.max_frame_bytes, text=text)
        self._idle.last_input = now = time.monotonic()
        if not self._rate.take(now):
            raise protocol.RateLimited(
                f"more than {self.settings.max_inputs_per_second:g} inputs per second; send the newest input only"
            )
        counts = self._counts
        counts.frames_in += 1
        counts.bytes_in += len(payload)
        inputs = self.from_client
        if inputs.pending is not None and (inputs.upstream is None or inputs.upstream_paused):
            counts.dropped_in += 1  # the waiting input is about to be replaced by this one
        if not self._sent_at:
            self._sent_at = now
        if self._idle_upstream.ended:
            self._wake.set()  # `run` opens the next leg; the input waits in `pending`

    def _write_control(self, frame: bytes) -> None:
        """Never inside an upstream frame that is part-way out to the client."""
        if self.from_upstream is not None and not self.from_upstream.closed:
            self.from_upstream.write_between_frames(frame)
        else:
            super()._write_control(frame)

    # splice.UpstreamHooks: upstream -> client

    def on_upstream_frame(self, length: int) -> None:
        """An output: the input waiting for one is answered (a TIMEOUT after this re-sends nothing)."""
        self.from_client.unanswered = None
        counts = self._counts
        counts.frames_upstream += 1
        counts.bytes_upstream += length
        if self._sent_at:
            counts.observe_latency(time.monotonic() - self._sent_at)
            self._sent_at = 0.0
        self._publish_sink_counts()

    def on_upstream_text(self, payload: bytes) -> bool:
        """An x-fal-error is the relay's to handle (TIMEOUT absorbed, others end the connection); any
        other text goes on to the client."""
        text = payload.decode(errors="replace")
        control = protocol.parse_control(text)
        if control is not None and control["type"] == "x-fal-error":
            if control.get("error") == protocol.ErrorCode.TIMEOUT:
                self._absorb_timeout()
            else:
                self._set_error(protocol.UpstreamReportedError(text, control))
            return False
        if control is None:  # not the protocol's own: the output of an app that answers in JSON
            self.on_upstream_frame(len(payload))
        else:
            self._counts.frames_upstream += 1
        return True

    def _absorb_timeout(self) -> None:
        self._idle_upstream.absorb(self.from_client)
        self._sent_at = 0.0
        self._wake.set()

    def on_upstream_ping(self, payload: bytes) -> None:
        if self._transport is not None:
            self._transport.write(frames.masked_frame(frames.OP_PONG, payload))

    def on_upstream_close(self, payload: bytes) -> None:
        """A normal close ends the leg as a TIMEOUT does; any other ends the connection."""
        code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
        if self.from_upstream is not None and self.from_upstream.mid_message:  # the client's message would never end
            self._set_error(protocol.UpstreamError(f"upstream closed the connection inside a message (code {code})"))
        elif code in _NORMAL_CLOSES or code == 1005:
            if not self._idle_upstream.ended:
                self._absorb_timeout()
        else:
            self._set_error(protocol.UpstreamError(f"upstream closed the connection unexpectedly (code {code})"))
        self._wake.set()
