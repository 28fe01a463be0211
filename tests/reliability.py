"""Helpers for the fault, abuse and fuzz suites: a canary session, leak counters, a raw WebSocket client."""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import secrets
import struct
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgpack
import websockets

from .conftest import RunningRelay, pack

# Everything the relay may close with after the x-fal-error it sends (README's error table).
ERROR_CLOSE = {
    "BAD_FRAME": 1007, "FRAME_TOO_LARGE": 1009, "UNAUTHORIZED": 1008, "TICKET_EXPIRED": 4001,
    "ORIGIN_NOT_ALLOWED": 1008, "APP_NOT_ALLOWED": 1008, "BAD_REQUEST": 1008, "RATE_LIMITED": 1013,
    "TOO_MANY_CONNECTIONS": 1013, "UPSTREAM_UNAVAILABLE": 1013, "UPSTREAM_ERROR": 1014,
}


@dataclass
class Canary:
    """A well-behaved session on `fault/ack` sending `rate` inputs a second and timing each answer."""

    relay: RunningRelay
    rate: float = 20.0
    answers: list[float] = field(default_factory=list)  # perf_counter when each answer arrived
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _run(self) -> None:
        ticket = self.relay.ticket(sub="canary", apps=("fault/ack",))
        try:
            async with websockets.connect(self.relay.url("fault/ack", ticket=ticket), open_timeout=30) as ws:
                seq = 0
                while not self._stop.is_set():
                    seq += 1
                    sent = time.perf_counter()
                    await ws.send(pack(seq=seq))
                    async with asyncio.timeout(15):
                        frame = await ws.recv()
                    answer = msgpack.unpackb(frame, raw=False)
                    if msgpack.unpackb(answer["input"], raw=False) != {"seq": seq}:
                        raise AssertionError(f"canary got someone else's answer: {answer!r}")
                    now = time.perf_counter()
                    self.answers.append(now)
                    self.latencies.append(now - sent)
                    try:
                        async with asyncio.timeout(max(0.0, 1 / self.rate - (now - sent))):
                            await self._stop.wait()
                    except TimeoutError:
                        pass
        except Exception as exc:  # the canary reports, the test asserts
            self.errors.append(f"{type(exc).__name__}: {exc}")

    async def __aenter__(self) -> Canary:
        self._task = asyncio.create_task(self._run())
        await self.wait_answers(3)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        async with asyncio.timeout(20):
            await self._task

    async def wait_answers(self, count: int, limit: float = 30.0) -> None:
        deadline = time.monotonic() + limit
        target = len(self.answers) + count
        while len(self.answers) < target and not self.errors:
            assert time.monotonic() < deadline, f"canary got no answers for {limit:g} s"
            await asyncio.sleep(0.02)
        assert not self.errors, self.errors

    def window(self, start: float, end: float) -> tuple[int, float]:
        """Answers in [start, end] and the longest gap between consecutive answers there (seconds)."""
        inside = [t for t in self.answers if start <= t <= end]
        edges = [start, *inside, end]
        return len(inside), max(b - a for a, b in zip(edges, edges[1:], strict=False))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_tasks() -> int:
    return len([t for t in asyncio.all_tasks() if not t.done()])


async def settle(probe: Callable[[], int], target: int, limit: float = 10.0) -> int:
    """Wait (at most `limit` s) until `probe()` drops to `target`; return the last reading."""
    deadline = time.monotonic() + limit
    value = probe()
    while value > target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        gc.collect()
        value = probe()
    return value


async def wait_for(condition: Callable[[], bool], limit: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {limit:g} s"
        await asyncio.sleep(0.02)


async def bounded(awaitable: Awaitable[object], limit: float) -> object:
    async with asyncio.timeout(limit):
        return await awaitable


# Raw WebSocket frames, for what a well-behaved client library refuses to send.


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True,
                 declared: int | None = None) -> bytes:
    """Encode one client frame; `declared` overrides the length field (the payload stays as given)."""
    length = len(payload) if declared is None else declared
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = secrets.token_bytes(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawSocket:
    """A TCP connection that did the WebSocket handshake by hand and then writes whatever it likes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._buffer = b""

    @classmethod
    async def open(cls, relay: RunningRelay, path: str) -> RawSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{relay.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        async with asyncio.timeout(15):
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def next_frame(self, limit: float = 10.0) -> tuple[int, bytes] | None:
        """The next server frame as (opcode, payload), or None at EOF."""
        async with asyncio.timeout(limit):
            while True:
                parsed = _parse_server_frame(self._buffer)
                if parsed is not None:
                    opcode, payload, used = parsed
                    self._buffer = self._buffer[used:]
                    return opcode, payload
                chunk = await self.reader.read(65536)
                if not chunk:
                    return None
                self._buffer += chunk

    async def close_code(self, limit: float = 10.0) -> int | None:
        """Read until the server's close frame; its code, or None if the server just hung up."""
        for _ in range(100_000):  # bounded: a flood test reads at most 20,000 pongs before the close
            frame = await self.next_frame(limit)
            if frame is None:
                return None
            opcode, payload = frame
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        raise AssertionError("no close frame after 100,000 frames")

    def close(self) -> None:
        self.writer.transport.abort()


def _parse_server_frame(data: bytes) -> tuple[int, bytes, int] | None:
    if len(data) < 2:
        return None
    opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
    if length == 126:
        if len(data) < 4:
            return None
        length, offset = struct.unpack("!H", data[2:4])[0], 4
    elif length == 127:
        if len(data) < 10:
            return None
        length, offset = struct.unpack("!Q", data[2:10])[0], 10
    if len(data) < offset + length:
        return None
    return opcode, data[offset:offset + length], offset + length


async def wait_ready(http: str, process: subprocess.Popen[bytes], log: Path | None = None, limit: float = 90.0) -> None:
    """Until the `realtime-server` process at `http` answers `/ready` with 200 (its embedded app is
    up); fails at once if the process dies (with its log, when given), or after `limit` seconds."""
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(base_url=http) as client:
        while True:
            assert process.poll() is None, log.read_text() if log else f"relay exited with {process.returncode}"
            try:
                if (await client.get("/ready", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "relay did not become ready in time"
            await asyncio.sleep(0.2)
