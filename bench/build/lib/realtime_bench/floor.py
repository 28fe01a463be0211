"""Experimental `floor` route: the least any Python proxy can do, for scale, never for use.

A uvloop TCP forwarder: each read from one side is written to the other, untouched. No WebSocket
parsing, no authentication, no checks, so it is not a relay; it measures what the event loop and
the two sockets cost per frame in CPython on this machine, the floor under any Python relay.
Configured like the relay (`PORT`, `RELAY_UPSTREAM_URL`) so the benchmark starts it the same way.
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit


class _Side(asyncio.Protocol):
    """One socket; what it reads goes to `peer` (buffered until the peer connection exists)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: asyncio.Transport | None = None
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self._early.append(data)
        else:
            self.peer.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()


class _Client(_Side):
    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self._target = (host, port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            upstream, side = await loop.create_connection(_Side, *self._target)
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        side.peer, self.peer = self.transport, upstream
        for data in self._early:
            upstream.write(data)
        self._early.clear()


async def serve(listen_port: int, host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(lambda: _Client(host, port), "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


def main() -> None:
    import uvloop

    upstream = urlsplit(os.environ["RELAY_UPSTREAM_URL"])
    uvloop.run(serve(int(os.environ["PORT"]), upstream.hostname or "127.0.0.1", upstream.port or 80))


if __name__ == "__main__":
    main()
