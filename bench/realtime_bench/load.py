"""The load generator, run as its own process so its CPU never counts against the route measured.

The worker (`python -m realtime_bench.worker`) reads one JSON `LoadSpec` line on stdin, opens the sessions
and warms them up, prints `{"event": "ready"}`, waits for `go`, measures, prints
`{"event": "done", ...}` with the raw round-trip samples, then waits for `bye` (or EOF) and closes.
The handshake lets the parent read the proxy's CPU and peak RSS over exactly the measured window.

Closed loop (`rate` None): each session sends its next input when the reply to the previous one
arrives, so frames/s on one session is one connection's throughput. Open loop (`rate` set): each
session sends `rate` inputs per second on a schedule, whatever the replies do, and a frame not
answered within `drain_s` of the end counts as lost. Open-loop round trips are measured from each
input's *scheduled* send time, not from when the loop got round to sending it, so a stalled client
or server cannot hide its stall (coordinated omission, as HdrHistogram's users correct for); how
late each send was is kept as `send_lag_ns`.

Inputs: `local/echo`'s `{size, seq}` (mode "echo"), or any app's input (`payload`, mode "app"),
to which each input adds `seed` = its sequence number; `image_bytes` adds a JPEG of that size, as a
webcam image-to-image stream sends. A reply is matched to its input by `seq`, else by `seed` (fal's
image apps echo it), else it answers the oldest input in flight. A reply's `timings` (seconds, as
fal's apps report them) are kept per frame, so the round trip splits into the upstream's own time
(`inference`, else the sum of the fields) and the rest (network and relay).

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

from .images import webcam_jpeg

CONNECT_TIMEOUT = 30.0
RENDER_INPUT = {"prompt": "a lighthouse at dusk, long exposure", "width": 512, "height": 512, "num_inference_steps": 4}


@dataclass
class LoadSpec:
    """What one measurement point sends, where, and for how long (every loop is bounded by both)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "echo"  # "echo": local/echo inputs {size, seq}; "app": `payload` plus a seed per input
    sessions: int = 1
    rate: float | None = None  # inputs/s per session; None = closed loop
    frame_bytes: int = 65536
    input_bytes: int = 200
    image_bytes: int = 0  # > 0: each input carries a JPEG of about this size as `image_bytes`
    payload: dict[str, Any] | None = None  # mode "app": the input every frame sends (default RENDER_INPUT)
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
    input_bytes: int = 0  # the size of one input as sent (the last one)
    errors: list[str] = field(default_factory=list)
    # Per frame that reported `timings`: each key's value, and the round trip less the upstream's time.
    timings_ns: dict[str, list[int]] = field(default_factory=dict)
    remainder_ns: list[int] = field(default_factory=list)
    send_lag_ns: list[int] = field(default_factory=list)  # open loop: actual send minus scheduled send

    def record(self, rtt_ns: int, size: int, timings: dict[str, float] | None) -> None:
        self.latencies_ns.append(rtt_ns)
        self.received += 1
        self.bytes_received += size
        if timings:
            for key, seconds in timings.items():
                self.timings_ns.setdefault(key, []).append(round(seconds * 1e9))
            self.remainder_ns.append(rtt_ns - round(upstream_seconds(timings) * 1e9))


def upstream_seconds(timings: dict[str, float]) -> float:
    """The upstream's own time in a reply's `timings`: `inference` when given (other keys, such as a total,
    may overlap it), else the sum of the fields."""
    return timings["inference"] if "inference" in timings else sum(timings.values())


def _timings(decoded: Any) -> dict[str, float] | None:
    """The numeric fields of a reply's `timings`, in seconds (fal's apps report e.g. `inference`)."""
    timings = decoded.get("timings") if isinstance(decoded, dict) else None
    if not isinstance(timings, dict):
        return None
    return {str(k): float(v) for k, v in timings.items() if isinstance(v, int | float) and not isinstance(v, bool)}


@dataclass(frozen=True)
class Reply:
    """What the load generator reads off one frame: the input it answers, and the upstream's timings."""

    seq: int | None  # None: the frame names no input (it answers the oldest in flight)
    timings: dict[str, float] | None
    text: str | None = None  # a text frame: an x-fal control message

    @property
    def is_error(self) -> bool:
        return self.text is not None and '"x-fal-error"' in self.text


class Session:
    """One WebSocket session: builds its inputs, matches replies to them by `seq` (or `seed`)."""

    def __init__(self, ws: ClientConnection, spec: LoadSpec) -> None:
        self.ws = ws
        self.spec = spec
        self._image = webcam_jpeg(spec.image_bytes) if spec.image_bytes else None
        base = msgpack.packb({"size": spec.frame_bytes, "seq": 0, "note": b""}, use_bin_type=True)
        self._note = b"n" * max(0, spec.input_bytes - len(base) - 8 - (len(self._image) if self._image else 0))
        self.seq = 0

    def next_input(self) -> tuple[int, bytes]:
        self.seq += 1
        if self.spec.mode == "app":
            payload = (self.spec.payload or RENDER_INPUT) | {"seed": self.seq}
        else:
            payload = {"size": self.spec.frame_bytes, "seq": self.seq, "note": self._note}
        if self._image is not None:
            payload["image_bytes"] = self._image
        return self.seq, msgpack.packb(payload, use_bin_type=True)

    def reply(self, frame: bytes | str) -> Reply:
        """Which input a frame answers, and the timings it reports; a text frame names none."""
        if isinstance(frame, str):
            return Reply(None, None, frame[:200])
        decoded = msgpack.unpackb(frame, raw=False)
        seq = decoded.get("seq", decoded.get("seed")) if isinstance(decoded, dict) else None
        return Reply(int(seq) if isinstance(seq, int) else None, _timings(decoded))

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
                reply = self.reply(frame)
                if reply.seq in (seq, None) and reply.text is None:
                    break  # a frame that names no input answers the only one in flight
                if reply.is_error and rec is not None:
                    rec.errors.append(reply.text or "")
                    return
            if rec is not None:
                rec.sent += 1
                rec.input_bytes = len(data)
                rec.record(time.perf_counter_ns() - started, len(frame), reply.timings)

    async def open_loop(self, rec: Recorder, start: float, deadline: float,
                        sent_log: dict[int, int] | None = None) -> None:
        """Open loop: inputs on a fixed schedule (random phase per session), replies matched by seq.

        Each round trip counts from the input's scheduled send time (coordinated omission).
        `sent_log` also gets each input's scheduled time, kept (the fan-out's viewers are timed against it).
        """
        assert self.spec.rate
        interval_ns = round(1e9 / self.spec.rate)
        start_ns = round(start * 1e9) + round(random.uniform(0, interval_ns))
        deadline_ns = round(deadline * 1e9)
        sent_at: dict[int, int] = {}
        all_answered = asyncio.Event()
        sending = True

        async def receive() -> None:
            async for frame in self.ws:
                reply = self.reply(frame)
                if reply.text is not None:
                    if reply.is_error:
                        rec.errors.append(reply.text)
                    continue
                seq = reply.seq if reply.seq is not None else min(sent_at, default=None)
                began = sent_at.pop(seq, None) if seq is not None else None
                if began is not None:
                    rec.record(time.perf_counter_ns() - began, len(frame), reply.timings)
                if not sending and not sent_at:
                    all_answered.set()

        receiver = asyncio.create_task(receive() if self.spec.read else asyncio.sleep(0))
        try:
            for k in range(self.spec.max_frames):
                due_ns = start_ns + k * interval_ns
                if due_ns >= deadline_ns:
                    break
                await asyncio.sleep(max(0.0, (due_ns - time.perf_counter_ns()) / 1e9))
                seq, data = self.next_input()
                sent_at[seq] = due_ns
                if sent_log is not None:
                    sent_log[seq] = due_ns
                rec.sent += 1
                rec.input_bytes = len(data)
                rec.send_lag_ns.append(max(0, time.perf_counter_ns() - due_ns))
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
