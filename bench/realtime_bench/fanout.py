"""The fan-out point: one live-session driver, N viewers, every viewer's frames timed against the driver.

Parent side (`ticketed`): tickets for the driver and each viewer are minted with the relay's
shared secret just before the point runs, not when the sweep is planned, because a ticket lives
five minutes and a long sweep outlasts that. Each viewer has its own `sub`, so the per-user limit
never shapes the load.

Load-generator side (`run_fanout`): the viewers connect first (each must get `session_waiting`,
which proves it joined before the driver), then the driver connects, warms up closed loop, and on
`go` sends inputs at a fixed rate (open loop, as the concurrency sweep does): a closed loop would pace
the driver by its own round trip and hide the queueing the viewers see behind each other. The
driver and the viewers share this process, so one clock (`perf_counter_ns`) times the driver's (scheduled) send
and each viewer's receipt of the same frame, matched by `seq`, with no skew between processes. The
price: the viewers share one event loop, so the last of N viewers read also waits for the client's
own parsing of the others' frames; the client's CPU is reported with every point for that reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import msgpack
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from realtime_server import tickets

from .load import CONNECT_TIMEOUT, LoadSpec, Recorder, Session, connect, cpu_seconds, emit, read_line

if TYPE_CHECKING:  # the load generator imports this module too: keep the server-side imports out of it
    from .procs import Route

ISSUER = "realtime-bench"
WAITING_TIMEOUT = 10.0  # for a viewer's `session_waiting`, which the relay sends as it accepts
SETTLE_STEP = 0.01  # seconds between checks that every viewer has every measured frame


def ticketed(spec: LoadSpec, route: Route, app: str) -> LoadSpec:
    """`spec` with a fresh live session: the driver's ticket in `url`, one viewer ticket per viewer URL."""
    if route.secret is None:
        raise ValueError(f"route {route.name} has no shared secret to mint live-session tickets with")
    secret = route.secret
    session = "bench-" + secrets.token_hex(6)

    def url(sub: str, role: tickets.Role) -> str:
        token = tickets.mint(secret, sub=sub, apps=[app], issuer=ISSUER, session=session, role=role,
                             lifetime=tickets.MAX_LIFETIME)
        return f"{route.url(app)}?session={session}&fal_jwt_token={token}"

    return dataclasses.replace(spec, url=url(f"{session}-driver", "driver"), headers={},
                               viewer_urls=[url(f"{session}-viewer-{i}", "viewer") for i in range(spec.viewers)])


@dataclass
class Viewer:
    """One viewer connection and what it received of the measured frames."""

    ws: ClientConnection
    waiting_seen: bool = False
    latencies_ns: list[int] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)  # the `seq` of each latency sample, in arrival order
    seen: set[int] = field(default_factory=set)
    bytes_received: int = 0
    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def await_waiting(self) -> None:
        """The first frame of a viewer that joins before its driver must be `session_waiting`."""
        async with asyncio.timeout(WAITING_TIMEOUT):
            frame = await self.ws.recv()
        if isinstance(frame, str):
            try:
                self.waiting_seen = json.loads(frame).get("action") == "session_waiting"
            except (ValueError, AttributeError):
                pass
        if not self.waiting_seen:
            self.errors.append(f"first frame was not session_waiting: {str(frame)[:200]}")

    async def receive(self, sent_at: dict[int, int], limit: int) -> None:
        """Time each frame whose `seq` the driver sent while measuring; warm-up frames are skipped."""
        for _ in range(limit):
            try:
                frame = await self.ws.recv()
            except ConnectionClosed as exc:
                self.errors.append(f"closed: {exc}"[:200])
                return
            arrived = time.perf_counter_ns()
            if isinstance(frame, str):
                self.messages.append(frame[:200])
                continue
            seq = int(msgpack.unpackb(frame, raw=False)["seq"])
            began = sent_at.get(seq)
            if began is None or seq in self.seen:
                continue
            self.seen.add(seq)
            self.seqs.append(seq)
            self.latencies_ns.append(arrived - began)
            self.bytes_received += len(frame)

    def report(self) -> dict[str, Any]:
        return {"latencies_ns": self.latencies_ns, "seqs": self.seqs, "received": len(self.seen),
                "bytes_received": self.bytes_received, "waiting_seen": self.waiting_seen,
                "messages": self.messages[:5], "errors": self.errors[:5]}


async def _settle(viewers: list[Viewer], expected: int, drain_s: float) -> None:
    """Wait until every viewer has every measured frame, or `drain_s` has passed (then they count as lost)."""
    for _ in range(int(drain_s / SETTLE_STEP) + 1):
        if all(len(v.seen) >= expected for v in viewers):
            return
        await asyncio.sleep(SETTLE_STEP)


async def run_fanout(spec: LoadSpec, control: asyncio.StreamReader) -> None:
    """The load generator's fan-out point, with the same ready/go/done/bye handshake as `load.run`."""
    viewers: list[Viewer] = []
    driver: ClientConnection | None = None
    receivers: list[asyncio.Task[None]] = []
    sent_at: dict[int, int] = {}
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT + WAITING_TIMEOUT):
            viewers = [Viewer(ws) for ws in await asyncio.gather(*(connect(u, {}) for u in spec.viewer_urls))]
            await asyncio.gather(*(v.await_waiting() for v in viewers))
            driver = await connect(spec.url, spec.headers)
        session = Session(driver, spec)
        limit = spec.warmup_frames + spec.max_frames + 100
        receivers = [asyncio.create_task(v.receive(sent_at, limit)) for v in viewers]
        async with asyncio.timeout(CONNECT_TIMEOUT + spec.warmup_frames):
            await session.ping_pong(None, time.perf_counter() + 30, spec.warmup_frames)
        emit({"event": "ready"})
        if await read_line(control) != "go":
            return
        rec = Recorder()
        cpu0, start = cpu_seconds(), time.perf_counter()
        async with asyncio.timeout(spec.duration_s + 2 * spec.drain_s + 30):
            await session.open_loop(rec, start, start + spec.duration_s, sent_log=sent_at)
            await _settle(viewers, len(sent_at), spec.drain_s)
        emit({"event": "done", "elapsed_s": spec.duration_s, "client_cpu_s": cpu_seconds() - cpu0,
              "inputs": len(sent_at), "viewers": [v.report() for v in viewers]} | asdict(rec))
        await read_line(control)  # "bye" or EOF: the parent has read the relay's figures
    finally:
        for task in receivers:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
        closing = [v.ws.close() for v in viewers] + ([driver.close()] if driver else [])
        await asyncio.gather(*closing, return_exceptions=True)
