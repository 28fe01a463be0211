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
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from .fanout import ticketed
from .load import LoadSpec
from .procs import ProcessProbe, Route
from .stats import FanoutPoint, Point, make_fanout_point, make_point

LOAD_MODULE = "realtime_bench.worker"
READY_TIMEOUT = 90.0
APP = "local/echo"  # the fan-out's app: transport, not rendering
DROPPED_METRIC = "relay_viewer_frames_dropped_total"  # frames the relay skipped for a viewer that fell behind


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


@dataclass
class Readings:
    """What the parent reads around the measured window: the load generator's result and the processes'."""

    result: dict[str, Any]
    proxy_cpu_s: float | None
    proxy_peak_rss_bytes: int | None
    upstream_cpu_s: float  # 0 when the upstream is not ours to read (a remote target)
    counter_delta: float | None = None  # change of `counter` over the window, when one was given
    proxy_rss_before: int | None = None  # the proxy's RSS before the load generator connected: peak minus this


def drive(route: Route, spec: LoadSpec, upstream: ProcessProbe | None, sampler: RssSampler | None = None,
          counter: Callable[[], float | None] | None = None) -> Readings:
    """Run `spec` over `route` in a fresh load-generator process, reading the processes around `go`..`done`.

    `counter` (a relay metric, say) is read at the same two moments as the CPU time.
    """
    rss_before = route.probe.rss_bytes() if route.probe else None
    child = subprocess.Popen(
        [sys.executable, "-m", LOAD_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        start_new_session=True,  # a Ctrl+C reaches the parent only, which ends this child in `finally`
    )
    assert child.stdin is not None and child.stdout is not None
    # Every wait below is also bounded by this watchdog: a wedged child is killed, and reads end.
    watchdog = threading.Timer(READY_TIMEOUT * 2 + spec.duration_s + 2 * spec.drain_s, child.kill)
    watchdog.start()
    try:
        child.stdin.write(json.dumps(dataclasses.asdict(spec)) + "\n")
        child.stdin.flush()
        _read_event(child.stdout, child, time.monotonic() + READY_TIMEOUT)
        probe = route.probe
        if probe:
            probe.reset_peak()
        count0 = counter() if counter else None
        proxy_cpu0 = probe.cpu_seconds() if probe else 0.0
        upstream_cpu0 = upstream.cpu_seconds() if upstream else 0.0
        child.stdin.write("go\n")
        child.stdin.flush()
        if sampler:
            sampler.start()
        result = _read_event(child.stdout, child,
                             time.monotonic() + spec.duration_s + 2 * spec.drain_s + READY_TIMEOUT)
        proxy_cpu = probe.cpu_seconds() - proxy_cpu0 if probe else None
        upstream_cpu = upstream.cpu_seconds() - upstream_cpu0 if upstream else 0.0
        peak = probe.peak_rss_bytes() if probe else None
        count1 = counter() if counter else None
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
    delta = count1 - count0 if count0 is not None and count1 is not None else None
    return Readings(result, proxy_cpu, peak, upstream_cpu, delta, rss_before)


def measure(route: Route, spec: LoadSpec, upstream: ProcessProbe | None, sampler: RssSampler | None = None,
            run: int = 0) -> Point:
    """Drive `spec` over `route` in a fresh load-generator process and return the point's figures."""
    r = drive(route, spec, upstream, sampler)
    point = make_point(route.name, spec.frame_bytes, spec.sessions, spec.rate, r.result, r.proxy_cpu_s,
                       r.proxy_peak_rss_bytes, r.upstream_cpu_s, image_bytes=spec.image_bytes)
    point.run = run
    return point


def measure_fanout(route: Route, spec: LoadSpec, upstream: ProcessProbe, run: int = 0) -> FanoutPoint:
    """One driver and `spec.viewers` viewers of a live session on `route` (the relay), fresh tickets."""
    spec = ticketed(spec, route, APP)
    r = drive(route, spec, upstream, counter=lambda: route.metric(DROPPED_METRIC))
    point = make_fanout_point(route.name, spec.frame_bytes, spec.rate, r.result, r.proxy_cpu_s,
                              r.proxy_peak_rss_bytes, r.upstream_cpu_s, r.counter_delta, r.proxy_rss_before)
    point.run = run
    return point
