"""Soak: many sessions for a long while against the real `realtime-server` process; memory and fds stay flat.

Run by hand (excluded from the default run by the `soak` marker):

    SOAK_SECONDS=1800 SOAK_SESSIONS=50 python -m pytest -m soak tests/test_soak.py -s

Each session drives `local/preview` (the embedded fal app, 128x128 frames) at `SOAK_RATE` inputs a
second with its own ticket and seed, waits for the answer, checks the answer is its own, and
reconnects with a fresh ticket every `SOAK_RECONNECT_SECONDS` (tickets live five minutes). A sampler
reads the relay process's RSS and fd count from /proc. The report is printed and written to
`artifacts/soak-report.txt`; the test fails if RSS grows more than 10 % after warm-up, if the relay
holds more fds after the sessions close than before they opened, or if any session saw an error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
import websockets

from realtime_server import tickets
from realtime_server.cli import free_port

from .conftest import SECRET, pack
from .reliability import wait_ready

pytestmark = pytest.mark.soak

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "1800"))
SOAK_SESSIONS = int(os.environ.get("SOAK_SESSIONS", "50"))
SOAK_RATE = float(os.environ.get("SOAK_RATE", "2"))
SOAK_RECONNECT_SECONDS = float(os.environ.get("SOAK_RECONNECT_SECONDS", "240"))
WARMUP_SECONDS = min(120.0, max(30.0, SOAK_SECONDS * 0.1))
SAMPLE_EVERY = 5.0
MAX_RSS_GROWTH = 0.10
REPORT = Path(__file__).resolve().parent.parent / "artifacts" / "soak-report.txt"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        text = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        found.extend(int(p) for p in text)
    return found


def _p99(values: list[float]) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


@dataclasses.dataclass
class Tally:
    started: float
    latencies: dict[int, list[float]] = dataclasses.field(default_factory=dict)  # minute -> seconds
    errors: list[str] = dataclasses.field(default_factory=list)
    frames: int = 0
    connections: int = 0

    def record(self, latency: float) -> None:
        minute = int((time.monotonic() - self.started) // 60)
        self.latencies.setdefault(minute, []).append(latency)
        self.frames += 1


async def _session(index: int, base: str, tally: Tally, stop_at: float) -> None:
    """One user: paced inputs with its own seed, answers checked, a fresh ticket every few minutes."""
    seed = 1000 + index
    period = 1.0 / SOAK_RATE
    while time.monotonic() < stop_at:
        ticket = tickets.mint(SECRET, sub=f"soak-{index}", apps=["local/preview"], issuer="soak", lifetime=300)
        reconnect_at = min(stop_at, time.monotonic() + SOAK_RECONNECT_SECONDS)
        try:
            async with websockets.connect(f"{base}/local/preview/realtime?fal_jwt_token={ticket}",
                                          open_timeout=20, close_timeout=5) as ws:
                tally.connections += 1
                step = 0
                while time.monotonic() < reconnect_at:
                    step += 1
                    prompt = f"soak session {index} step {step % 7}"
                    sent = time.perf_counter()
                    await ws.send(pack(prompt=prompt, seed=seed, width=128, height=128, num_inference_steps=2))
                    async with asyncio.timeout(20):
                        frame = await ws.recv()
                    latency = time.perf_counter() - sent
                    if not isinstance(frame, bytes):
                        raise AssertionError(f"session {index} got a text frame {frame[:200]!r}")
                    answer = msgpack.unpackb(frame, raw=False)
                    if answer.get("seed") != seed:
                        raise AssertionError(f"session {index} got seed {answer.get('seed')}, not its own {seed}")
                    tally.record(latency)
                    await asyncio.sleep(max(0.0, period - latency))
        except Exception as exc:  # every failure counts; the session reconnects after a pause
            tally.errors.append(f"session {index}: {type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(1.0)


async def _settled_fds(pid: int, target: int, limit: float = 15.0) -> int:
    deadline = time.monotonic() + limit
    count = _fds(pid)
    while count > target and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        count = _fds(pid)
    return count


async def test_soak_keeps_memory_and_fds_flat(tmp_path: Path) -> None:
    """SOAK_SESSIONS sessions for SOAK_SECONDS: RSS grows ≤10 % after warm-up, no fd leaks, no errors."""
    port = free_port()
    env = os.environ | {
        "PORT": str(port), "RELAY_SHARED_SECRET": SECRET, "RELAY_LOG_LEVEL": "warning",
        "RELAY_MAX_CONNECTIONS_PER_USER": "2",
    }
    env.pop("FAL_KEY", None)
    env.pop("RELAY_UPSTREAM_URL", None)
    log = (tmp_path / "relay.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "realtime_server.cli"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    base, http = f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    samples: list[tuple[float, int, int]] = []  # (seconds since start, RSS KiB, fds)
    app_pid = 0
    try:
        await wait_ready(http, process)
        pid = process.pid
        (app_pid,) = _children(pid)
        # One round trip first, so lazily opened fds (upstream DNS, thread pool) count in the baseline.
        probe = Tally(started=time.monotonic())
        await _session(-1, base, probe, time.monotonic() + 2)
        assert not probe.errors, probe.errors
        baseline_fds = await _settled_fds(pid, 0, limit=3)

        started = time.monotonic()
        tally = Tally(started=started)
        stop_at = started + SOAK_SECONDS

        async def sample() -> None:
            while time.monotonic() < stop_at:
                samples.append((time.monotonic() - started, _rss_kib(pid), _fds(pid)))
                await asyncio.sleep(SAMPLE_EVERY)

        sessions = [asyncio.create_task(_session(i, base, tally, stop_at)) for i in range(SOAK_SESSIONS)]
        sampler = asyncio.create_task(sample())
        async with asyncio.timeout(SOAK_SECONDS + 120):
            await asyncio.gather(*sessions, sampler)
        final_fds = await _settled_fds(pid, baseline_fds)
        assert process.poll() is None, "relay died during the soak"
        app_rss = _rss_kib(app_pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()
        if app_pid and Path(f"/proc/{app_pid}").exists():  # SIGTERM can orphan the embedded app (see README)
            os.kill(app_pid, signal.SIGKILL)

    after_warmup = [rss for t, rss, _ in samples if t >= WARMUP_SECONDS]
    assert len(after_warmup) >= 4, f"too few samples after warm-up ({len(after_warmup)}); raise SOAK_SECONDS"
    window = max(2, min(6, len(after_warmup) // 4))
    rss_start = statistics.median(after_warmup[:window])
    rss_end = statistics.median(after_warmup[-window:])
    growth = (rss_end - rss_start) / rss_start
    minutes = sorted(tally.latencies)
    p99s = {m: _p99(tally.latencies[m]) for m in minutes}
    steady = [m for m in minutes if m * 60 >= WARMUP_SECONDS and len(tally.latencies[m]) >= 10]
    drift = p99s[steady[-1]] / p99s[steady[0]] if len(steady) >= 2 else math.nan
    lines = [
        f"soak: {SOAK_SESSIONS} sessions x {SOAK_SECONDS:g} s at {SOAK_RATE:g} inputs/s each "
        f"(warm-up {WARMUP_SECONDS:g} s, reconnect every {SOAK_RECONNECT_SECONDS:g} s)",
        f"frames: {tally.frames}, connections: {tally.connections}, errors: {len(tally.errors)}",
        f"relay RSS after warm-up: {rss_start / 1024:.1f} MiB -> end {rss_end / 1024:.1f} MiB "
        f"({growth * 100:+.1f} %); peak {max(r for _, r, _ in samples) / 1024:.1f} MiB; "
        f"embedded app RSS at end {app_rss / 1024:.1f} MiB",
        f"relay fds: {baseline_fds} before sessions, peak {max(f for _, _, f in samples)} during, "
        f"{final_fds} after they closed",
        f"p99 latency drift (last/first steady minute): {drift:.2f}x",
        "relay RSS per minute (MiB): " + ", ".join(
            f"{minute}:{rss / 1024:.1f}" for minute, rss in sorted({int(t // 60): r for t, r, _ in samples}.items())),
        "p99 latency per minute (ms): " + ", ".join(f"{m}:{p99s[m] * 1000:.0f}" for m in minutes),
    ] + [f"error: {e}" for e in tally.errors[:20]]
    report = "\n".join(lines)
    print("\n" + report)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(report + "\n")
    assert not tally.errors, report
    assert growth <= MAX_RSS_GROWTH, report
    assert final_fds <= baseline_fds, report
