"""A misbehaving realtime upstream for fault tests, dispatching by app path like websockets' tests.

`/fault/echo` answers each input with a frame of `size` bytes (`count` times), after an x-fal-message
`timings` text frame when the input has a `note`, `/fault/refuse`
rejects the handshake, `/fault/slow` never completes it, `/fault/crash` dies after one input,
`/fault/garbage` answers with bytes that are not msgpack, `/fault/error` sends its own x-fal-error,
`/fault/ack` answers every input at once with `{"ack": n, "input": <the input's bytes>}`, `/fault/png`
answers like an image app whose frames are PNGs.
`switchable_upstream()` serves `fault/switch`, whose behaviour a test changes between connections
and which records when it produced each fault, so tests can time how fast the client is told.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from http import HTTPStatus

import msgpack
from PIL import Image
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

LOGGER = logging.getLogger("tests.upstream")  # its own name, so log checks can tell the relay's lines from ours
FAULT_APPS = ("fault/echo", "fault/refuse", "fault/slow", "fault/crash", "fault/garbage", "fault/error", "fault/ack",
              "fault/png")


async def _handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request else ""
    if path.startswith("/fault/ack/"):
        await _ack(ws)
        return
    async for message in ws:
        inputs = msgpack.unpackb(message, raw=False) if isinstance(message, bytes) else {}
        if path.startswith("/fault/echo/"):
            if "note" in inputs:
                await ws.send(json.dumps({"type": "x-fal-message", "action": "timings", "note": inputs["note"]}))
            for _ in range(int(inputs.get("count", 1))):
                await ws.send(msgpack.packb({"echo": inputs.get("seq"), "pad": b"\0" * int(inputs.get("size", 16))}))
        elif path.startswith("/fault/png/"):
            await ws.send(msgpack.packb({"images": [{"content": _png(), "content_type": "image/png", "width": 64,
                                                     "height": 48}], "seed": inputs.get("seed", 0)}))
        elif path.startswith("/fault/crash/"):
            ws.transport.abort()
            return
        elif path.startswith("/fault/garbage/"):
            await ws.send(b"\xc1\xc1 not msgpack")
        elif path.startswith("/fault/error/"):
            await ws.send(json.dumps({"type": "x-fal-error", "error": "INTERNAL_ERROR", "reason": "model exploded"}))
            await ws.close()
            return


def _png() -> bytes:
    """A 64x48 PNG, red on the left half, blue on the right."""
    image = Image.new("RGB", (64, 48), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 32, 48))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def _process_request(ws: ServerConnection, request: Request) -> Response | None:
    if request.path.startswith("/fault/refuse/"):
        return ws.respond(HTTPStatus.FORBIDDEN, "no\n")
    if request.path.startswith("/fault/slow/"):
        await asyncio.sleep(1.5)
    return None


@asynccontextmanager
async def fault_upstream() -> AsyncIterator[str]:
    server: Server
    async with serve(_handler, "127.0.0.1", 0, process_request=_process_request, compression=None,
                     logger=LOGGER) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def _ack(ws: ServerConnection) -> None:
    """Answer every input, whatever it holds, with a map carrying its count and its exact bytes."""
    count = 0
    with suppress(ConnectionClosed):  # the relay drops upstream when its client goes: not an upstream failure
        async for message in ws:
            count += 1
            data = message if isinstance(message, bytes) else message.encode()
            await ws.send(msgpack.packb({"ack": count, "input": data}, use_bin_type=True))


SWITCH_MODES = ("ok", "refuse", "slow", "crash", "drop", "garbage", "error", "timeout", "late-timeout", "mute-timeout")


@dataclasses.dataclass
class Switchable:
    """`fault/switch`: acks inputs in mode `ok`; otherwise produces the fault named by `mode`.

    `refuse` answers the handshake with 403, `slow` holds it for `slow_seconds`, `crash` aborts the
    TCP connection on the first input, `drop` answers the first input then aborts after `drop_after`
    seconds, `garbage` answers with bytes that are not msgpack, `error` sends its own x-fal-error,
    `timeout` answers each input then ends the session with x-fal-error TIMEOUT as fal's idle servers
    do, `late-timeout` answers the first input and ends the session with TIMEOUT `drop_after` seconds
    later, leaving unanswered whatever came in between (an input racing fal's idle timeout),
    `mute-timeout` ends the session with TIMEOUT on each input, unanswered.
    `fault_at` is the `time.perf_counter()` when the last fault was produced.
    """

    url: str = ""
    mode: str = "ok"
    slow_seconds: float = 1.5
    drop_after: float = 0.3
    fault_at: float | None = None
    handshakes: int = 0
    open_connections: int = 0

    def fault(self) -> None:
        self.fault_at = time.perf_counter()

    async def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        if self.mode == "refuse":
            self.fault()
            return ws.respond(HTTPStatus.FORBIDDEN, "no\n")
        if self.mode == "slow":
            self.fault()
            await asyncio.sleep(self.slow_seconds)
        return None

    async def handler(self, ws: ServerConnection) -> None:
        self.open_connections += 1
        try:
            with suppress(ConnectionClosed):
                await self._serve(ws)
        finally:
            self.open_connections -= 1

    async def _serve(self, ws: ServerConnection) -> None:
        count = 0
        async for message in ws:
            count += 1
            mode = self.mode
            if mode in ("crash", "garbage", "error"):
                self.fault()
                if mode == "crash":
                    ws.transport.abort()
                elif mode == "garbage":
                    await ws.send(b"\xc1\xc1 not msgpack")
                else:
                    error = {"type": "x-fal-error", "error": "MODEL_FAILED", "reason": "model exploded"}
                    await ws.send(json.dumps(error))
                    await ws.close()
                return
            if mode == "mute-timeout":
                await ws.send(json.dumps({"type": "x-fal-error", "error": "TIMEOUT", "reason": "no input for 5 s"}))
                await ws.close()
                return
            data = message if isinstance(message, bytes) else message.encode()
            await ws.send(msgpack.packb({"ack": count, "input": data}, use_bin_type=True))
            if mode == "drop":
                await asyncio.sleep(self.drop_after)
                self.fault()
                ws.transport.abort()
                return
            if mode in ("timeout", "late-timeout"):
                if mode == "late-timeout":
                    await asyncio.sleep(self.drop_after)
                await ws.send(json.dumps({"type": "x-fal-error", "error": "TIMEOUT", "reason": "no input for 5 s"}))
                await ws.close()
                return


@asynccontextmanager
async def switchable_upstream() -> AsyncIterator[Switchable]:
    """Serve `fault/switch` on a free loopback port; the test flips `mode` between connections."""
    switch = Switchable()
    async with serve(switch.handler, "127.0.0.1", 0, process_request=switch.process_request,
                     compression=None, logger=LOGGER) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        switch.url = f"ws://127.0.0.1:{port}"
        yield switch
