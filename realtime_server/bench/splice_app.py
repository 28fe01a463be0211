"""Experimental `splice` route: the relay's handshake checks, with the hot path spliced (see `splice.py`).

This is the prototype of what `relay.py`/`app.py` would do with the splice: the same `parse_target`,
`check_origin`, `authenticate`, `check_app` and input checks, the upstream opened before accept,
then no pump tasks at all: both directions run in the sockets' read callbacks. The benchmark serves
it as its own process (`python -m realtime_server.bench.splice_app`, configured like the relay) so
its CPU and RSS can be set beside the relay's. Live-session viewers and metrics are left out.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import suppress
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState

from .. import protocol, splice, upstream
from ..app import authenticate, check_app, check_origin, parse_target
from ..metrics import Metrics
from ..protocol import RelayError
from ..relay import RateLimit
from ..settings import Settings
from ..splice_uvicorn import EXTENSION, SplicedClient, SpliceWebSocketProtocol

logger = logging.getLogger(__name__)
METRICS_EVERY = 32


class SplicedSession:
    """One client and its upstream leg, spliced; implements the hooks of both directions."""

    def __init__(self, settings: Settings, target: upstream.Target, metrics: Metrics) -> None:
        self.settings, self.target = settings, target
        # Prometheus calls cost several Python calls each: count in plain ints, publish every
        # METRICS_EVERY outputs and at the end, and time one round trip in METRICS_EVERY.
        self.frames_in, self.frames_out = metrics.frames.labels("in"), metrics.frames.labels("out")
        self.latency = metrics.latency
        self.sent_at = 0.0
        self.outputs = self._in_unpublished = self._out_unpublished = 0
        self.rate = RateLimit(settings.max_inputs_per_second)
        self.ended = asyncio.Event()
        self.error: RelayError | None = None
        self.upstream_idle = False
        self.forward_error: str | None = None  # an upstream x-fal-error, passed on before the close
        self.to_upstream = splice.ClientToUpstream(self, settings.max_frame_bytes, on_error=self.fail)
        self.transport: asyncio.Transport | None = None
        self.last_input = time.monotonic()  # the idle timer reads it; no timer is rescheduled per input
        self._idle_timer: asyncio.TimerHandle | None = None

    # ClientHooks
    def on_input(self, payload: bytes) -> None:
        protocol.check_input(payload, self.settings.max_frame_bytes)
        if not self.rate.take():
            raise protocol.RateLimited(f"more than {self.settings.max_inputs_per_second:g} inputs per second")
        self._in_unpublished += 1
        self.last_input = time.monotonic()
        if not self.outputs % METRICS_EVERY:
            self.sent_at = time.perf_counter()
        if self.upstream_idle:
            self.ended.set()  # wakes `run`, which reopens upstream; the input waits in `pending`

    def on_client_close(self, payload: bytes) -> None:
        self.ended.set()

    # UpstreamHooks
    def on_upstream_text(self, payload: bytes) -> bool:
        control = protocol.parse_control(payload.decode(errors="replace"))
        if control is not None and control["type"] == "x-fal-error":
            if control.get("error") == protocol.ErrorCode.TIMEOUT:
                self.upstream_idle = True  # absorbed: the client stays, upstream reopens on the next input
                self.to_upstream.upstream = None  # inputs from now on wait in `pending` for the new leg
                if self.to_upstream.pending is None and self.to_upstream.unanswered is not None:
                    self.to_upstream.pending = self.to_upstream.unanswered  # lost with the old leg: send it again
                return False
            self.error = protocol.UpstreamError(str(control.get("reason") or "upstream reported an error"))
            self.forward_error = payload.decode(errors="replace")
            self.ended.set()
            return False
        return True

    def on_upstream_close(self, payload: bytes) -> None:
        self.ended.set()

    def on_upstream_frame(self) -> None:
        self.to_upstream.unanswered = None
        self.outputs += 1
        self._out_unpublished += 1
        if self.sent_at:
            self.latency.observe(time.perf_counter() - self.sent_at)
            self.sent_at = 0.0
        if not self.outputs % METRICS_EVERY:
            self.publish_metrics()

    def publish_metrics(self) -> None:
        self.frames_in.inc(self._in_unpublished)
        self.frames_out.inc(self._out_unpublished)
        self._in_unpublished = self._out_unpublished = 0

    def _check_idle(self) -> None:
        left = self.last_input + self.settings.idle_timeout - time.monotonic()
        if left > 0:
            self._idle_timer = asyncio.get_running_loop().call_later(left, self._check_idle)
            return
        self.error = protocol.IdleTimeout(f"no input for {self.settings.idle_timeout:g} s; reconnect when needed")
        self.ended.set()

    def fail(self, exc: Exception) -> None:
        if isinstance(exc, splice.SpliceError):
            exc = protocol.UpstreamError(exc.reason) if exc.upstream else protocol.BadFrame(exc.reason)
        self.error = exc if isinstance(exc, RelayError) else protocol.RelayError("the relay failed; please reconnect")
        self.ended.set()

    async def open(self) -> tuple[asyncio.Transport, splice.UpstreamProtocol]:
        headers = {"Authorization": f"Key {self.settings.fal_key}"} if self.settings.fal_key else None
        try:
            return await splice.open_upstream(upstream.upstream_url(self.settings, self.target), headers,
                                              self.settings.upstream_open_timeout)
        except (OSError, TimeoutError) as exc:
            raise protocol.UpstreamUnavailable(f"cannot reach upstream for {self.target.app} ({exc})") from None

    async def run(self, websocket: WebSocket) -> None:
        self.transport, up = await self.open()
        await websocket.accept()
        client = websocket.scope["extensions"][EXTENSION]["start"](self.to_upstream.feed)
        self.last_input = time.monotonic()
        self._check_idle()
        try:
            for early in client.early_inputs:  # inputs uvicorn parsed before the switch: frame them anew
                mask = secrets.token_bytes(4)
                self.on_input(early)
                frame = splice.frame_header(splice.OP_BINARY, len(early), mask) + splice.unmask(early, mask)
                self.to_upstream.send_input(frame)
            async with asyncio.timeout(self.settings.max_session_seconds):
                await self._pump(client, up)
        except TimeoutError:
            self.error = protocol.SessionExpired("session too long; reconnect to go on")
        finally:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self.publish_metrics()
            if self.transport is not None:
                self.transport.close()  # whichever upstream leg is current
        if self.error is not None:
            text = self.forward_error or protocol.error_frame(self.error.error, self.error.reason)
            client.close(self.error.close_code, protocol.close_reason(self.error.reason), text)
        else:
            client.close(protocol.CloseCode.NORMAL_CLOSURE)

    def _upstream_paused(self, paused: bool) -> None:
        if paused:
            self.to_upstream.upstream_paused = True
        else:
            self.to_upstream.resume()

    async def _pump(self, client: SplicedClient, up: splice.UpstreamProtocol) -> None:
        lost = client.lost
        while True:
            assert self.transport is not None  # opened in `run`, reopened below
            down = splice.UpstreamToClients(self, [client.sink], on_error=self.fail)
            up.on_pause = self._upstream_paused
            up.take_buffered(down.feed)
            self.upstream_idle = False
            self.to_upstream.attach(self.transport)
            self.ended.clear()
            waiter = asyncio.ensure_future(self.ended.wait())
            watched: list[asyncio.Future[Any]] = [waiter, lost, up.lost]
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if lost.done() or self.to_upstream.closed or self.error is not None:
                return
            if not (self.upstream_idle or down.closed or up.lost.done()):
                continue
            if not self.upstream_idle:
                raise protocol.UpstreamError("upstream closed the connection unexpectedly")
            self.transport.close()
            self.to_upstream.upstream = None  # inputs wait in `pending` until the new leg is attached
            if self.to_upstream.pending is None:
                self.ended.clear()
                waiter = asyncio.ensure_future(self.ended.wait())
                watched = [waiter, lost]
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if lost.done() or self.to_upstream.closed or self.error is not None:
                    return
            self.transport, up = await self.open()


def create_splice_app(settings: Settings) -> Starlette:
    secret = settings.shared_secret or secrets.token_urlsafe(32)
    metrics = Metrics()

    async def realtime(websocket: WebSocket) -> None:
        try:
            target = parse_target(websocket)
            check_origin(websocket, settings)
            check_app(target, authenticate(websocket, settings, secret), settings)
            await SplicedSession(settings, target, metrics).run(websocket)
        except RelayError as exc:
            if websocket.application_state is WebSocketState.CONNECTING:
                await websocket.accept()
                with suppress(Exception):
                    await websocket.send_text(protocol.error_frame(exc.error, exc.reason))
                    await websocket.close(exc.close_code, protocol.close_reason(exc.reason))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    routes = [Route("/health", health), WebSocketRoute("/{owner}/{alias}/realtime", realtime),
              WebSocketRoute("/{owner}/{alias}/{path:path}/realtime", realtime)]
    return Starlette(routes=routes)


def main() -> None:
    """Serve the splice prototype the way `realtime_server.cli.serve` serves the relay."""
    settings = Settings.from_environ()
    logging.basicConfig(level=settings.log_level.upper())
    uvicorn.run(create_splice_app(settings), host=settings.host, port=settings.port, ws=SpliceWebSocketProtocol,
                ws_max_size=settings.max_frame_bytes * 2, ws_per_message_deflate=False, access_log=False,
                log_level=settings.log_level)


if __name__ == "__main__":
    main()
