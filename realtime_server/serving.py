"""How uvicorn serves the relay: one protocol and one config for the console command and the tests.

uvicorn's sans-I/O WebSocket protocol is the base, with two changes.

Splicing. ASGI hides the socket, and the relay's hot path needs it (see `splice`): each
WebSocket scope gets the extension `fal.splice`. After `websocket.accept()`, with no await in
between, the app calls `scope["extensions"]["fal.splice"]["start"](on_data)`; from then on every
read from the client goes to `on_data` instead of uvicorn's frame parser, and the returned
`SplicedClient` holds the client's transport as a `splice.Sink`.

Bounds. uvicorn applies backpressure to what the app sends but answers pings as they arrive and
waits without end for a peer that never reads. A relay facing the open internet needs both
bounded, so reading stops while writes are paused (an unread flood of pongs cannot pile up) and a
peer whose writes stay paused longer than RELAY_SEND_TIMEOUT is let go: a spliced client is told
(`SplicedClient.stalled`; the relay queues its x-fal-error and close behind the unread frames and
aborts the socket if they are still unread after CLOSE_TIMEOUT), any other is dropped at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from .frames import OP_CLOSE, OP_TEXT, frame_header
from .settings import Settings
from .splice import Sink

SPLICE_EXTENSION = "fal.splice"
CLOSE_TIMEOUT = 2.0  # after the relay's close frame, how long a spliced client has to answer with its own


@dataclass
class SplicedClient:
    """What `start` hands back: the client as a sink, inputs uvicorn had already parsed, and the socket's end."""

    sink: Sink
    transport: asyncio.Transport  # the client's socket, the sink's writer
    early_inputs: list[bytes]
    lost: asyncio.Future[None]  # the socket is gone
    shutdown: asyncio.Future[None]  # the server is stopping: close with 1012, which invites a reconnect
    stalled: asyncio.Future[None]  # the client has read nothing for send_timeout while frames wait
    close: Callable[..., None]


class RelayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, bounded by the peer's reading and able to splice."""

    send_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_data: Callable[[bytes], None] | None = None
        self._sink: Sink | None = None
        self._lost: asyncio.Future[None] | None = None
        self._shutdown: asyncio.Future[None] | None = None
        self._stalled: asyncio.Future[None] | None = None  # SplicedClient.stalled
        self._stall_timer_handle: asyncio.TimerHandle | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the app task starts on the next loop turn, after this
            scope["extensions"][SPLICE_EXTENSION] = {"start": self.start_splice}

    def start_splice(self, on_data: Callable[[bytes], None]) -> SplicedClient:
        """Switch to splice mode. Call right after accept, with no await in between."""
        if not self.handshake_complete or self.close_sent:
            raise RuntimeError("start the splice after websocket.accept and before any close")
        if self.conn.reader.buffer:
            raise RuntimeError("client bytes are mid-frame in uvicorn's parser; start the splice right after accept")
        early: list[bytes] = []
        while not self.queue.empty():  # whole inputs uvicorn parsed before the switch (unmasked)
            message = self.queue.get_nowait()
            data = message.get("bytes") if message["type"] == "websocket.receive" else None
            if isinstance(data, bytes):
                early.append(data)
        self.stop_keepalive()  # the relay answers pings per hop; uvicorn would never see the pongs
        self._on_data = on_data
        self._sink = Sink(self.transport, paused=not self.writable.is_set())
        self._lost = self.loop.create_future()
        self._shutdown = self.loop.create_future()
        self._stalled = self.loop.create_future()
        if self.disconnected:
            self._lost.set_result(None)
        elif self._sink.paused:
            self._stall_timer()
        return SplicedClient(self._sink, self.transport, early, self._lost, self._shutdown, self._stalled,
                             self.close_spliced)

    def close_spliced(self, code: int = 1000, reason: str = "", text: str | None = None) -> None:
        """Send an optional text frame (an x-fal-error) and a close frame; the socket closes when the app returns."""
        if self.close_sent or self.disconnected:
            return
        if self._sink is not None:
            self._sink.parked = None  # a frame waiting for the client to drain must not follow the close
        if text is not None:
            body = text.encode()
            self.transport.write(frame_header(OP_TEXT, len(body)) + body)
        payload = struct.pack(">H", code) + reason.encode()[:123]
        self.transport.write(frame_header(OP_CLOSE, len(payload)) + payload)
        self.close_sent = True
        # The socket stays open for the client's closing frame (the app closes it then), up to this long.
        self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._close_transport)

    def _close_transport(self) -> None:
        """Close gracefully once everything is handed to the kernel; a client that left our frames
        unread is aborted, or its socket would wait on it forever."""
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()

    def shutdown(self) -> None:
        """uvicorn would write its close frame now, possibly inside a spliced frame: let the relay close."""
        if self._shutdown is None or self.close_sent:
            super().shutdown()
        elif not self._shutdown.done():
            self._shutdown.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._on_data is not None:
            self._on_data(data)
            return
        super().data_received(data)

    def pause_writing(self) -> None:
        super().pause_writing()
        self.transport.pause_reading()
        if self._sink is not None:
            self._sink.paused = True
            self._stall_timer()

    def resume_writing(self) -> None:
        super().resume_writing()
        if not self.read_paused and not self.transport.is_closing():
            self.transport.resume_reading()
        if self._sink is not None:
            if self._stall_timer_handle is not None:
                self._stall_timer_handle.cancel()
                self._stall_timer_handle = None
            self._sink.resume()

    def _stall_timer(self) -> None:
        if self._stall_timer_handle is None:
            self._stall_timer_handle = self.loop.call_later(self.send_timeout, self._on_stalled)

    def _on_stalled(self) -> None:
        if self._stalled is None or self.close_sent:
            self.transport.abort()  # not spliced, or already closing: nothing more can reach it
        elif not self._stalled.done():
            self._stalled.set_result(None)

    async def receive(self) -> Any:
        message = await super().receive()
        if not self.writable.is_set() and not self.transport.is_closing():
            self.transport.pause_reading()  # uvicorn resumed reading for the app; not while the peer is stalled
        return message

    async def send(self, message: Any) -> None:
        if not self.writable.is_set():
            try:
                await asyncio.wait_for(self.writable.wait(), self.send_timeout)
            except TimeoutError:
                self.transport.abort()
                raise ClientDisconnected from None
        await super().send(message)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._stall_timer_handle is not None:
            self._stall_timer_handle.cancel()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        # Break the reference cycles through this protocol (scope -> extension -> protocol, and the
        # relay's splice -> protocol) so refcounting frees the connection now, not a late GC pass.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(SPLICE_EXTENSION, None)
        self._on_data = None


def websocket_protocol(send_timeout: float) -> type[RelayWebSocketProtocol]:
    return type("RelayWebSocketProtocol", (RelayWebSocketProtocol,), {"send_timeout": send_timeout})


def uvicorn_config(app: ASGIApp, settings: Settings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "ws": websocket_protocol(settings.send_timeout),
        # Before the splice starts (and for viewers), uvicorn parses frames; beyond this it closes with
        # 1009 before the app sees a byte. Spliced inputs are refused from their header alone.
        "ws_max_size": settings.max_frame_bytes * 2,
        "ws_per_message_deflate": False,  # JPEG/msgpack frames: deflate costs CPU and latency for nothing
        "access_log": False,  # the relay logs one line per connection itself, without query strings
        "log_level": settings.log_level,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_keyfile": settings.ssl_keyfile,
        "timeout_graceful_shutdown": settings.drain_seconds,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


class _SideServer(uvicorn.Server):
    """A second listener in the relay's own process and loop: the relay's server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_beside(app: ASGIApp, host: str, port: int) -> AsyncIterator[None]:
    """Serve `app` on host:port while the block runs (e.g. /metrics on an address only the operator reaches)."""
    server = _SideServer(uvicorn.Config(app, host=host, port=port, lifespan="off", access_log=False, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():  # e.g. the port is taken: uvicorn exits with SystemExit(1)
            raise RuntimeError(f"cannot listen on {host}:{port} for /metrics")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task
