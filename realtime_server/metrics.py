"""Prometheus metrics for `/metrics`, one registry per app so several relays can live in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.connections = Gauge("relay_open_connections", "Open client connections", ["role"], registry=r)
        self.connections_total = Counter(
            "relay_connections_total", "Client connections by outcome", ["outcome"], registry=r
        )
        self.frames = Counter("relay_frames_total", "Frames relayed", ["direction"], registry=r)
        self.bytes = Counter("relay_bytes_total", "Payload bytes relayed", ["direction"], registry=r)
        self.dropped = Counter(
            "relay_frames_dropped_total", "Frames replaced by a newer one before they were sent", ["direction"],
            registry=r,
        )
        self.errors = Counter("relay_errors_total", "x-fal-error frames sent, by code", ["code"], registry=r)
        self.upstream_opens = Counter("relay_upstream_opens_total", "Upstream connections opened", registry=r)
        self.latency = Histogram(
            "relay_frame_latency_seconds", "Input forwarded upstream to output frame received",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.sessions = Gauge("relay_live_sessions", "Live sessions with a driver on this replica", registry=r)
        self.viewers = Histogram(
            "relay_viewers_per_session", "Viewers of a live session, sampled when one joins",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250), registry=r,
        )
        self.viewer_dropped = Counter(
            "relay_viewer_frames_dropped_total", "Frames a slow viewer skipped", registry=r
        )

        # Labelled children looked up once: `.labels()` costs a dict lookup under a lock per call.
        self.frames_in, self.frames_upstream, self.frames_out = (
            self.frames.labels(direction) for direction in ("in", "upstream", "out")
        )
        self.bytes_in, self.bytes_upstream = self.bytes.labels("in"), self.bytes.labels("upstream")
        self.dropped_in, self.dropped_out = self.dropped.labels("in"), self.dropped.labels("out")

    def render(self) -> bytes:
        return generate_latest(self.registry)
