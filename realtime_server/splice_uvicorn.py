"""uvicorn's websockets-sansio protocol, able to hand its socket to a frame splice after the handshake.

ASGI hides the socket, and a splice needs it: this subclass adds the ASGI extension
`fal.splice` to each WebSocket scope. The endpoint authenticates and opens the upstream as usual,
calls `await websocket.accept()`, and then, before awaiting anything else, calls
`scope["extensions"]["fal.splice"]["start"](on_data)`: from then on every read from the client
goes to `on_data` (see `splice.ClientToUpstream`) instead of uvicorn's frame parser, and the
returned `Sink` is the client's transport for `splice.UpstreamToClients`. Serve with
`uvicorn.Config(app, ws=SpliceWebSocketProtocol, ...)`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from .splice import OP_CLOSE, OP_TEXT, Sink, frame_header

EXTENSION = "fal.splice"


@dataclass
class SplicedClient:
    """What `start` hands back: the viewer sink, inputs uvicorn had already parsed, and the end of the socket."""

    sink: Sink
    early_inputs: list[bytes]
    lost: asyncio.Future[None]
    close: Callable[..., None]


class SpliceWebSocketProtocol(WebSocketsSansIOProtocol):
    """A uvicorn WebSocket protocol whose connection can be switched to splice mode by the app."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_data: Callable[[bytes], None] | None = None
        self._sink: Sink | None = None
        self._lost: asyncio.Future[None] | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the app task starts on the next loop turn, after this
            scope["extensions"][EXTENSION] = {"start": self.start_splice}

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
        self.stop_keepalive()  # pings now pass through end to end; uvicorn would never see the pongs
        self._on_data = on_data
        self._sink = Sink(self.transport, paused=not self.writable.is_set())
        self._lost = self.loop.create_future()
        if self.disconnected:
            self._lost.set_result(None)
        return SplicedClient(self._sink, early, self._lost, self.close_spliced)

    def close_spliced(self, code: int = 1000, reason: str = "", text: str | None = None) -> None:
        """Send an optional text frame (an x-fal-error) and a close frame; the socket closes when the app returns."""
        if self.close_sent or self.disconnected:
            return
        if text is not None:
            body = text.encode()
            self.transport.write(frame_header(OP_TEXT, len(body)) + body)
        payload = struct.pack(">H", code) + reason.encode()[:123]
        self.transport.write(frame_header(OP_CLOSE, len(payload)) + payload)
        self.close_sent = True

    def data_received(self, data: bytes) -> None:
        if self._on_data is not None:
            self._on_data(data)
            return
        super().data_received(data)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._sink is not None:
            self._sink.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._sink is not None:
            self._sink.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
