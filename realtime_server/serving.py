"""How uvicorn serves the relay: one config for the console command and the tests alike.

uvicorn's sans-I/O WebSocket protocol is the base. It applies backpressure to what the app sends,
but answers pings as they arrive, and waits without end for a peer that never reads. A relay
facing the open internet needs both bounded, so the protocol here stops reading while its writes
are paused (an unread flood of pongs cannot pile up) and gives up on a peer whose writes stay
paused longer than RELAY_SEND_TIMEOUT (its task and socket are released, not kept forever).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .settings import Settings


class RelayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with reads and writes bounded by the peer's reading."""

    send_timeout: float = 10.0

    def pause_writing(self) -> None:
        super().pause_writing()
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if not self.read_paused and not self.transport.is_closing():
            self.transport.resume_reading()

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


def websocket_protocol(send_timeout: float) -> type[RelayWebSocketProtocol]:
    return type("RelayWebSocketProtocol", (RelayWebSocketProtocol,), {"send_timeout": send_timeout})


def uvicorn_config(app: ASGIApp, settings: Settings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "ws": websocket_protocol(settings.send_timeout),
        # Frames between max_frame_bytes and this get FRAME_TOO_LARGE from the relay; beyond it the
        # protocol closes with 1009 before the app sees a byte.
        "ws_max_size": settings.max_frame_bytes * 2,
        "ws_per_message_deflate": False,  # JPEG/msgpack frames: deflate costs CPU and latency for nothing
        "access_log": False,  # the relay logs one line per connection itself, without query strings
        "log_level": settings.log_level,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_keyfile": settings.ssl_keyfile,
        "timeout_graceful_shutdown": 5,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)
