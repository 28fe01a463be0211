"""The load generator, run as its own process so its CPU never counts against the route measured.

`python -m realtime_server.bench.load` reads one JSON `LoadSpec` line on stdin, opens the sessions
and warms them up, prints `{"event": "ready"}`, waits for `go`, measures, prints
`{"event": "done", ...}` with the raw round-trip samples, then waits for `bye` (or EOF) and closes.
The handshake lets the parent read the proxy's CPU and peak RSS over exactly the measured window.

Closed loop (`rate` None): each session sends its next input when the reply to the previous one
arrives, so frames/s on one session is one connection's throughput. Open loop (`rate` set): each
session sends `rate` inputs per second on a schedule, whatever the replies do, and a frame not
answered within `drain_s` of the end counts as lost.

Fan-out (`viewer_urls` set, see `fanout.py`): the viewers connect first, then one driver sends on
the open-loop schedule, and each viewer's receipt of each frame is timed against the driver's send.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import msgpack
import websockets
from websockets.asyncio.client import ClientConnection

CONNECT_TIMEOUT = 30.0
SPEC_LINE_LIMIT = 64 * 1024 * 1024
RENDER_INPUT = {"prompt": "a lighthouse at dusk, long exposure", "width": 512, "height": 512, "num_inference_steps": 4}


@dataclass
class LoadSpec:
    """What one measurement point sends, where, and for how long (every loop is bounded by both)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "echo"  # "echo": local/echo inputs {size, seq}; "render": local/preview inputs
    sessions: int = 1
    rate: float | None = None  # inputs/s per session; None = closed loop
    frame_bytes: int = 65536
    input_bytes: int = 200
    image: bool = False  # the input carries `input_bytes` of `image_bytes`, as image-to-image does
    duration_s: float = 3.0
    max_frames: int = 1_000_000  # per session
    warmup_frames: int = 20  # per session, before `ready`
    drain_s: float = 2.0
    read: bool = True  # False: a stalled viewer that sends inputs and never reads a reply
    # Fan-out: live-session viewers of the driver at `url` (tickets in the URLs), connected before it.
    viewers: int = 0  # > 0: a fan-out point; `fanout.ticketed` fills `viewer_urls` just before it runs
    viewer_urls: list[str] = field(default_factory=list)


@dataclass
class Recorder:
    """Samples shared by every session of the point."""

    latencies_ns: list[int] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    bytes_received: int = 0
    errors: list[str] = field(default_factory=list)


class Session:
    """One WebSocket session: builds its inputs, matches replies to them by `seq`."""

    def __init__(self, ws: ClientConnection, spec: LoadSpec) -> None:
        self.ws = ws
        self.spec = spec
        base = msgpack.packb({"size": spec.frame_bytes, "seq": 0, "note": b""}, use_bin_type=True)
        self._note = b"n" * max(0, spec.input_bytes - len(base) - 8)
        self._field = "image_bytes" if spec.image else "note"
        if spec.image:  # incompressible, like a JPEG from a webcam
            self._note = random.randbytes(len(self._note))
        self.seq = 0

    def next_input(self) -> tuple[int, bytes]:
        self.seq += 1
        if self.spec.mode == "render":
            return self.seq, msgpack.packb(RENDER_INPUT | {"seed": self.seq}, use_bin_type=True)
        payload = {"size": self.spec.frame_bytes, "seq": self.seq, self._field: self._note}
        return self.seq, msgpack.packb(payload, use_bin_type=True)

    def reply_seq(self, frame: bytes | str) -> int | None:
        """The `seq` a reply answers; None for a text frame (an x-fal control message)."""
        if isinstance(frame, str):
            return None
        if self.spec.mode == "render":
            return self.seq  # one input in flight: the reply answers the latest
        decoded = msgpack.unpackb(frame, raw=False)
        return int(decoded["seq"])

    async def ping_pong(self, rec: Recorder | None, deadline: float, limit: int) -> None:
        """Closed loop: one input in flight, the next sent as soon as its reply is in."""
        for _ in range(limit):
            if time.perf_counter() >= deadline:
                return
            seq, data = self.next_input()
            started = time.perf_counter_ns()
            await self.ws.send(data)
            while True:
                frame = await self.ws.recv()
                got = self.reply_seq(frame)
                if got == seq:
                    break
                if got is None and rec is not None:
                    rec.errors.append(str(frame)[:200])
                    return
            if rec is not None:
                rec.latencies_ns.append(time.perf_counter_ns() - started)
                rec.sent += 1
                rec.received += 1
                rec.bytes_received += len(frame)

    async def open_loop(self, rec: Recorder, start: float, deadline: float,
                        sent_log: dict[int, int] | None = None) -> None:
        """Open loop: inputs on a fixed schedule (random phase per session), replies matched by seq.

        `sent_log` also gets each input's send time, kept (the fan-out's viewers are timed against it).
        """
        assert self.spec.rate
        interval = 1.0 / self.spec.rate
        phase = random.uniform(0, interval)
        sent_at: dict[int, int] = {}
        all_answered = asyncio.Event()
        sending = True

        async def receive() -> None:
            async for frame in self.ws:
                got = self.reply_seq(frame)
                if got is None:
                    rec.errors.append(str(frame)[:200])
                    continue
                began = sent_at.pop(got, None)
                if began is not None:
                    rec.latencies_ns.append(time.perf_counter_ns() - began)
                    rec.received += 1
                    rec.bytes_received += len(frame)
                if not sending and not sent_at:
                    all_answered.set()

        receiver = asyncio.create_task(receive() if self.spec.read else asyncio.sleep(0))
        try:
            for k in range(self.spec.max_frames):
                due = start + phase + k * interval
                if due >= deadline:
                    break
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                seq, data = self.next_input()
                sent_at[seq] = time.perf_counter_ns()
                if sent_log is not None:
                    sent_log[seq] = sent_at[seq]
                rec.sent += 1
                await self.ws.send(data)
            sending = False
            if sent_at and self.spec.read:
                try:
                    async with asyncio.timeout(self.spec.drain_s):
                        await all_answered.wait()
                except TimeoutError:
                    pass
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)


async def connect(url: str, headers: dict[str, str], read: bool = True) -> ClientConnection:
    """One client connection as every point opens it: no compression, no size cap, no pings."""
    return await websockets.connect(
        # A stalled viewer must not drain the socket into the client library's queue either.
        url, additional_headers=headers, compression=None, max_size=None, max_queue=None if read else 1,
        open_timeout=CONNECT_TIMEOUT, ping_interval=None,
    )


async def _open_sessions(spec: LoadSpec) -> list[Session]:
    async def one() -> Session:
        return Session(await connect(spec.url, spec.headers, spec.read), spec)

    async with asyncio.timeout(CONNECT_TIMEOUT):
        return list(await asyncio.gather(*(one() for _ in range(spec.sessions))))


async def read_line(reader: asyncio.StreamReader) -> str:
    return (await reader.readline()).decode().strip()


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(spec: LoadSpec, control: asyncio.StreamReader) -> None:
    sessions = await _open_sessions(spec)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT + spec.warmup_frames):
            await asyncio.gather(*(s.ping_pong(None, time.perf_counter() + 30, spec.warmup_frames) for s in sessions))
        emit({"event": "ready"})
        if await read_line(control) != "go":
            return
        rec = Recorder()
        cpu0, start = cpu_seconds(), time.perf_counter()
        deadline = start + spec.duration_s
        async with asyncio.timeout(spec.duration_s + spec.drain_s + 30):
            if spec.rate is None:
                await asyncio.gather(*(s.ping_pong(rec, deadline, spec.max_frames) for s in sessions))
            else:
                await asyncio.gather(*(s.open_loop(rec, start, deadline) for s in sessions))
        elapsed = min(time.perf_counter(), deadline) - start if spec.rate is None else spec.duration_s
        emit({"event": "done", "elapsed_s": elapsed, "client_cpu_s": cpu_seconds() - cpu0} | asdict(rec))
        await read_line(control)  # "bye" or EOF: the parent has read the proxy's figures
    finally:
        await asyncio.gather(*(s.ws.close() for s in sessions), return_exceptions=True)


async def _main() -> None:
    loop = asyncio.get_running_loop()
    # The spec line carries a ticketed URL per fan-out viewer (about 0.5 KB each): past the default 64 KB.
    control = asyncio.StreamReader(limit=SPEC_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(control), sys.stdin)
    spec = LoadSpec(**json.loads(await read_line(control)))
    if spec.viewers:
        from .fanout import run_fanout  # imported here: fanout builds on this module's Session

        await run_fanout(spec, control)
    else:
        await run(spec, control)


def main() -> None:
    try:
        import uvloop  # the client's own overhead is part of every figure: keep it small
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(_main())
    else:
        uvloop.run(_main())


if __name__ == "__main__":
    main()
