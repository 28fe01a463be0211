"""A misbehaving realtime upstream for fault tests, dispatching by app path like websockets' tests.

`/fault/echo` answers each input with a frame of `size` bytes (`count` times), `/fault/refuse`
rejects the handshake, `/fault/slow` never completes it, `/fault/crash` dies after one input,
`/fault/garbage` answers with bytes that are not msgpack, `/fault/error` sends its own x-fal-error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

import msgpack
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

FAULT_APPS = ("fault/echo", "fault/refuse", "fault/slow", "fault/crash", "fault/garbage", "fault/error")


async def _handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request else ""
    async for message in ws:
        inputs = msgpack.unpackb(message, raw=False) if isinstance(message, bytes) else {}
        if path.startswith("/fault/echo/"):
            for _ in range(int(inputs.get("count", 1))):
                await ws.send(msgpack.packb({"echo": inputs.get("seq"), "pad": b"\0" * int(inputs.get("size", 16))}))
        elif path.startswith("/fault/crash/"):
            ws.transport.abort()
            return
        elif path.startswith("/fault/garbage/"):
            await ws.send(b"\xc1\xc1 not msgpack")
        elif path.startswith("/fault/error/"):
            await ws.send(json.dumps({"type": "x-fal-error", "error": "INTERNAL_ERROR", "reason": "model exploded"}))
            await ws.close()
            return


async def _process_request(ws: ServerConnection, request: Request) -> Response | None:
    if request.path.startswith("/fault/refuse/"):
        return ws.respond(HTTPStatus.FORBIDDEN, "no\n")
    if request.path.startswith("/fault/slow/"):
        await asyncio.sleep(1.5)
    return None


@asynccontextmanager
async def fault_upstream() -> AsyncIterator[str]:
    server: Server
    async with serve(_handler, "127.0.0.1", 0, process_request=_process_request, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"
