"""Run one measurement point: a load-generator child against one route, with the readings around it.

The child signals `ready` once its sessions are open and warm; only then are the proxy's CPU time
and peak-RSS mark taken, and again when it reports `done`, so handshakes and warm-up stay out.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from typing import IO, Any

from .load import LoadSpec
from .procs import ProcessProbe, Route
from .stats import Point, make_point

LOAD_MODULE = "realtime_server.bench.load"
READY_TIMEOUT = 90.0


class LoadFailed(RuntimeError):
    """Raised when the load generator dies or does not report in time."""


def _read_event(stream: IO[str], child: subprocess.Popen[str], deadline: float) -> dict[str, Any]:
    # The child prints one JSON object per line; anything else (a warning) is skipped.
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise LoadFailed(f"load generator exited (code {child.wait(timeout=10)})")
        line = line.strip()
        if line.startswith("{"):
            event: dict[str, Any] = json.loads(line)
            return event
    raise LoadFailed("load generator did not report in time")


class RssSampler(threading.Thread):
    """Samples a probe's RSS every `interval` seconds until stopped (the stalled-viewer check)."""

    def __init__(self, probe: ProcessProbe, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.probe, self.interval = probe, interval
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self._stop_event.is_set():
            self.samples.append((time.monotonic() - started, self.probe.rss_bytes()))
            self._stop_event.wait(self.interval)

    def stop(self) -> list[tuple[float, int]]:
        self._stop_event.set()
        self.join()
        return self.samples


def measure(route: Route, spec: LoadSpec, upstream: ProcessProbe, sampler: RssSampler | None = None) -> Point:
    """Drive `spec` over `route` in a fresh load-generator process and return the point's figures."""
    child = subprocess.Popen(
        [sys.executable, "-m", LOAD_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
    )
    assert child.stdin is not None and child.stdout is not None
    # Every wait below is also bounded by this watchdog: a wedged child is killed, and reads end.
    watchdog = threading.Timer(READY_TIMEOUT * 2 + spec.duration_s + spec.drain_s, child.kill)
    watchdog.start()
    try:
        child.stdin.write(json.dumps(dataclasses.asdict(spec)) + "\n")
        child.stdin.flush()
        _read_event(child.stdout, child, time.monotonic() + READY_TIMEOUT)
        probe = route.probe
        if probe:
            probe.reset_peak()
        proxy_cpu0 = probe.cpu_seconds() if probe else 0.0
        upstream_cpu0 = upstream.cpu_seconds()
        child.stdin.write("go\n")
        child.stdin.flush()
        if sampler:
            sampler.start()
        result = _read_event(child.stdout, child, time.monotonic() + spec.duration_s + spec.drain_s + READY_TIMEOUT)
        proxy_cpu = probe.cpu_seconds() - proxy_cpu0 if probe else None
        upstream_cpu = upstream.cpu_seconds() - upstream_cpu0
        peak = probe.peak_rss_bytes() if probe else None
        if sampler:
            sampler.stop()
        child.stdin.write("bye\n")
        child.stdin.flush()
        child.wait(timeout=30)
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    return make_point(route.name, spec.frame_bytes, spec.sessions, spec.rate, result, proxy_cpu, peak, upstream_cpu)
