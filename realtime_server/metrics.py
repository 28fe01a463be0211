"""Prometheus metrics for `/metrics`, one registry per app so several relays can live in one process.

Every label has a small closed set of values (directions, roles, error codes, outcomes): no
session or user id is ever a label, so the series stay few and say nothing about who is live.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class FrameCounts:
    """The per-frame counters and the latency histogram as plain numbers: a Prometheus `Counter.inc`
    takes a lock, and the relay counts several things per frame inside read callbacks. Exported
    when `/metrics` is scraped."""

    frames_in: int = 0
    frames_upstream: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_upstream: int = 0
    dropped_in: int = 0
    dropped_out: int = 0
    dropped_viewers: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe_latency(self, seconds: float) -> None:
        """One round trip, from the input sent upstream to the frame that answered it."""
        self.latency_buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # buckets are upper bounds (le)
        self.latency_sum += seconds


class _FrameCountsCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        c = self.metrics.counts
        frames = CounterMetricFamily("relay_frames", "Frames relayed", labels=["direction"])
        for direction, value in (("in", c.frames_in), ("upstream", c.frames_upstream), ("out", c.frames_out)):
            frames.add_metric([direction], value)
        sizes = CounterMetricFamily("relay_bytes", "Payload bytes relayed", labels=["direction"])
        sizes.add_metric(["in"], c.bytes_in)
        sizes.add_metric(["upstream"], c.bytes_upstream)
        dropped = CounterMetricFamily(
            "relay_frames_dropped", "Frames replaced by a newer one before they were sent", labels=["direction"]
        )
        dropped.add_metric(["in"], c.dropped_in)
        dropped.add_metric(["out"], c.dropped_out)
        cumulative, buckets = 0, []
        for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], c.latency_buckets, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        latency = HistogramMetricFamily("relay_frame_latency_seconds",
                                        "Input from the client to the upstream frame answering it",
                                        buckets=buckets, sum_value=c.latency_sum)
        viewers_dropped = CounterMetricFamily(
            "relay_viewer_frames_dropped", "Frames skipped for live-session viewers that fell behind"
        )
        viewers_dropped.add_metric([], c.dropped_viewers)
        # Aggregates only: a label per session id would name who is live and grow without bound.
        counts = list(self.metrics.session_viewers())
        viewers = GaugeMetricFamily("relay_session_viewers", "Viewers of live sessions now, all sessions together")
        viewers.add_metric([], sum(counts))
        busiest = GaugeMetricFamily("relay_session_viewers_max", "Viewers of the most-watched live session now")
        busiest.add_metric([], max(counts, default=0))
        yield from (frames, sizes, dropped, latency, viewers_dropped, viewers, busiest)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    counts: FrameCounts = field(default_factory=FrameCounts)
    # viewers of each live session; the session hub sets it
    session_viewers: Callable[[], Iterable[int]] = lambda: ()

    def __post_init__(self) -> None:
        r = self.registry
        r.register(_FrameCountsCollector(self))
        self.connections = Gauge("relay_open_connections", "Open client connections", ["role"], registry=r)
        self.connections_total = Counter(
            "relay_connections_total", "Client connections by outcome", ["outcome"], registry=r
        )
        self.errors = Counter("relay_errors_total", "x-fal-error frames sent, by code", ["code"], registry=r)
        self.upstream_opens = Counter("relay_upstream_opens_total", "Upstream connections opened", registry=r)
        self.sessions = Gauge("relay_live_sessions", "Live sessions with a driver on this replica", registry=r)
        self.connection_limit = Gauge(
            "relay_connection_limit", "RELAY_MAX_CONNECTIONS: open connections this replica admits", registry=r)
        self.viewer_skipped = Histogram(
            "relay_viewer_skipped_frames", "Frames each viewer skipped over its connection, observed as it leaves",
            buckets=(0, 1, 10, 100, 1000, 10000), registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
