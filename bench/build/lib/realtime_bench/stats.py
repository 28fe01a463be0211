"""Figures from raw samples: latency percentiles, per-point summaries, route ratios and targets.

Kept free of I/O so the numbers the report prints can be checked in isolation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
# The parts of a browser frame's input-to-pixels time, and how the tables name them.
BROWSER_PARTS = {
    "input_to_pixels_ms": "input to pixels", "send_delay_ms": "  send delay", "round_trip_ms": "  round trip",
    "upstream_ms": "    upstream (reported)", "network_ms": "    network + relay",
    "decode_draw_ms": "  decode + draw", "paint_ms": "  paint",
}
LATENCY_KEYS = tuple(name for name, _ in PERCENTILES) + ("max", "mean")


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on an already sorted sequence."""
    if not sorted_values:
        return math.nan
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def latency_summary(samples_ns: Sequence[int]) -> dict[str, float]:
    """Percentiles, max and mean in milliseconds."""
    values = sorted(s / 1e6 for s in samples_ns)
    summary = {name: percentile(values, pct) for name, pct in PERCENTILES}
    summary["max"] = values[-1] if values else math.nan
    summary["mean"] = sum(values) / len(values) if values else math.nan
    return summary


@dataclass
class Point:
    """One measurement: one route, one frame size, one number of sessions."""

    route: str
    frame_bytes: int
    sessions: int
    rate: float | None  # inputs/s per session; None = closed loop (next input when the reply arrives)
    sent: int
    received: int
    duration_s: float
    latency_ms: dict[str, float]
    frames_per_s: float
    bytes_per_s: float
    proxy_cpu_s: float | None  # relay or nginx process tree; None on the direct route
    proxy_cpu_us_per_frame: float | None
    proxy_peak_rss_bytes: int | None
    upstream_cpu_s: float
    client_cpu_s: float
    errors: list[str] = field(default_factory=list)
    image_bytes: int = 0  # > 0: each input carried a JPEG of about this size
    input_bytes: int = 0  # one input as sent, in bytes
    # The round trip split: each `timings` key the upstream reported (fal's apps: `inference`), and
    # what is left of the round trip (network, relay, client); empty when the upstream reports none.
    upstream_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    remainder_ms: dict[str, float] | None = None
    send_lag_ms: dict[str, float] | None = None  # open loop: how late inputs left against their schedule
    run: int = 0  # which of the `--repeat` runs this point was taken in
    runs: int = 1  # > 1: a median over interleaved runs (`spread.median_point`)
    spread: dict[str, list[float]] = field(default_factory=dict)  # figure -> [min, max] over the runs

    @property
    def lost(self) -> int:
        return self.sent - self.received

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["lost"] = self.lost
        return data


def make_point(
    route: str, spec_frame_bytes: int, sessions: int, rate: float | None, result: dict[str, Any],
    proxy_cpu_s: float | None, proxy_peak_rss: int | None, upstream_cpu_s: float, image_bytes: int = 0,
) -> Point:
    """Turn a load-generator result and the process readings into a `Point`."""
    received = int(result["received"])
    elapsed = float(result["elapsed_s"]) or math.nan
    return Point(
        route=route, frame_bytes=spec_frame_bytes, sessions=sessions, rate=rate,
        sent=int(result["sent"]), received=received, duration_s=elapsed,
        latency_ms=latency_summary(result["latencies_ns"]),
        frames_per_s=received / elapsed, bytes_per_s=float(result["bytes_received"]) / elapsed,
        proxy_cpu_s=proxy_cpu_s,
        proxy_cpu_us_per_frame=(proxy_cpu_s / received * 1e6) if proxy_cpu_s is not None and received else None,
        proxy_peak_rss_bytes=proxy_peak_rss, upstream_cpu_s=upstream_cpu_s,
        client_cpu_s=float(result["client_cpu_s"]), errors=list(result.get("errors", []))[:20],
        image_bytes=image_bytes, input_bytes=int(result.get("input_bytes", 0)),
        upstream_ms={key: latency_summary(ns) for key, ns in (result.get("timings_ns") or {}).items()},
        remainder_ms=latency_summary(result["remainder_ns"]) if result.get("remainder_ns") else None,
        send_lag_ms=latency_summary(result["send_lag_ns"]) if result.get("send_lag_ns") else None,
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def compare(subject: Point, baseline: Point) -> dict[str, Any]:
    """Every figure of `subject` divided by `baseline`'s, plus the added latency in ms."""
    ratios: dict[str, float | None] = {key: _ratio(subject.latency_ms[key], baseline.latency_ms[key])
                                       for key in LATENCY_KEYS}
    ratios["frames_per_s"] = _ratio(subject.frames_per_s, baseline.frames_per_s)
    ratios["bytes_per_s"] = _ratio(subject.bytes_per_s, baseline.bytes_per_s)
    ratios["proxy_cpu_us_per_frame"] = _ratio(subject.proxy_cpu_us_per_frame, baseline.proxy_cpu_us_per_frame)
    ratios["proxy_peak_rss_bytes"] = _ratio(
        float(subject.proxy_peak_rss_bytes) if subject.proxy_peak_rss_bytes else None,
        float(baseline.proxy_peak_rss_bytes) if baseline.proxy_peak_rss_bytes else None,
    )
    added = {key: subject.latency_ms[key] - baseline.latency_ms[key] for key in LATENCY_KEYS}
    return {"ratio": ratios, "added_ms": added}


def comparisons(points: Sequence[Point], subject: str, baselines: Sequence[str]) -> list[dict[str, Any]]:
    """For each (frame size, sessions) measured on `subject`, its comparison with each baseline route."""
    index = {(p.route, *point_key(p)): p for p in points}
    rows = []
    for p in points:
        if p.route != subject:
            continue
        row: dict[str, Any] = {"route": subject, "frame_bytes": p.frame_bytes, "sessions": p.sessions,
                               "rate": p.rate, "image_bytes": p.image_bytes}
        for base in baselines:
            other = index.get((base, *point_key(p)))
            if other is not None:
                row[f"vs_{base}"] = compare(p, other)
        rows.append(row)
    return rows


def point_key(p: Point) -> tuple[int, int, float | None, int]:
    """What makes two routes' points the same measurement: frame size, sessions, rate, image size."""
    return p.frame_bytes, p.sessions, p.rate, p.image_bytes


@dataclass(frozen=True)
class Target:
    """One of issue 4's targets, checked against the measured figures."""

    name: str
    measured: float | None
    limit: float | None
    unit: str
    met: bool | None  # None when a route it needs was not measured


def check_targets(
    sizes: Sequence[Point], concurrency: Sequence[Point], stall_growth: float | None, subject: str = "relay",
    frame_bytes: int = 65536, busy_sessions: int = 200,
) -> list[Target]:
    """The release targets: relay vs direct and tuned nginx at 64 KB, and 200 sessions at 10 inputs/s."""
    index = {(p.route, p.frame_bytes): p for p in sizes if p.sessions == 1}
    relay, direct, nginx = (index.get((r, frame_bytes)) for r in (subject, "direct", "nginx"))
    targets: list[Target] = []

    def add(name: str, measured: float | None, limit: float | None, unit: str, lower_is_better: bool = True) -> None:
        met = None
        if measured is not None and limit is not None:
            met = measured <= limit if lower_is_better else measured >= limit
        targets.append(Target(name, measured, limit, unit, met))

    if relay and direct:
        added = relay.latency_ms["p50"] - direct.latency_ms["p50"]
        limit = nginx.latency_ms["p50"] - direct.latency_ms["p50"] + 0.02 if nginx else None
        add("added p50 <= nginx's added p50 + 0.02 ms", added, limit, "ms")
        add("p99 <= 1.5x direct p99", relay.latency_ms["p99"], 1.5 * direct.latency_ms["p99"], "ms")
    if relay and nginx:
        add("CPU per frame <= 1.5x nginx's", relay.proxy_cpu_us_per_frame,
            1.5 * nginx.proxy_cpu_us_per_frame if nginx.proxy_cpu_us_per_frame else None, "us")
        add("one-connection throughput >= nginx's", relay.frames_per_s, nginx.frames_per_s, "frames/s",
            lower_is_better=False)
    busy = next((p for p in concurrency if p.route == subject and p.sessions == busy_sessions), None)
    if busy:
        add(f"{busy_sessions} sessions: p99 < 5 ms", busy.latency_ms["p99"], 5.0, "ms")
        add(f"{busy_sessions} sessions: frames lost", float(busy.lost), 0.0, "frames")
    if stall_growth is not None:
        add("stalled viewer: relay RSS growth", stall_growth / 1e6, 8.0, "MB")
    return targets


def check_image_targets(images: Sequence[Point], subject: str = "relay") -> list[Target]:
    """Image inputs: closed loop, the relay adds no more than nginx (+0.02 ms); at the highest rate, p99 within
    1.5x direct's and nothing lost."""
    index = {(p.route, p.image_bytes, p.rate): p for p in images}
    targets: list[Target] = []
    rates = sorted({p.rate for p in images if p.rate})
    for size in sorted({p.image_bytes for p in images}):
        name = f"image {size // 1024} KB"
        relay, direct, nginx = (index.get((r, size, None)) for r in (subject, "direct", "nginx"))
        if relay and direct and nginx:
            added = relay.latency_ms["p50"] - direct.latency_ms["p50"]
            limit = nginx.latency_ms["p50"] - direct.latency_ms["p50"] + 0.02
            targets.append(Target(f"{name}: added p50 <= nginx's + 0.02 ms", added, limit, "ms", added <= limit))
        if rates:
            busy, direct = index.get((subject, size, rates[-1])), index.get(("direct", size, rates[-1]))
            if busy and direct:
                limit = 1.5 * direct.latency_ms["p99"]
                targets.append(Target(f"{name} at {rates[-1]:g}/s: p99 <= 1.5x direct", busy.latency_ms["p99"],
                                      limit, "ms", busy.latency_ms["p99"] <= limit))
            if busy:
                targets.append(Target(f"{name} at {rates[-1]:g}/s: frames lost", float(busy.lost), 0.0, "frames",
                                      busy.lost <= 0))
    return targets


@dataclass
class FanoutPoint:
    """One driver's frames fanned out to `viewers` viewers of a live session on one route (the relay).

    Viewer latency is from the driver's send of an input to a viewer's receipt of the frame answering
    it; the summary pools every viewer's samples, and `per_viewer` keeps each one's own figures.
    A frame is delivered once to the driver and once to each viewer, so the relay's CPU is given
    per input (what one more input costs with this many viewers) and per delivered frame.
    """

    route: str
    viewers: int
    frame_bytes: int
    rate: float | None
    duration_s: float
    inputs: int  # inputs the driver sent while measuring
    driver_received: int
    driver_latency_ms: dict[str, float]  # the driver's own round trip
    viewer_latency_ms: dict[str, float]  # every viewer's samples pooled
    last_viewer_ms: dict[str, float]  # per input, until the last viewer had its frame (inputs all viewers got)
    viewer_received: int  # over all viewers
    lost_per_viewer_mean: float
    lost_per_viewer_max: int
    relay_dropped: float | None  # the relay's relay_viewer_frames_dropped_total over the window
    waiting_seen: int  # viewers that got session_waiting, i.e. joined before the driver
    proxy_cpu_s: float | None
    proxy_cpu_us_per_input: float | None
    proxy_cpu_us_per_frame: float | None  # per frame delivered (driver's plus viewers')
    proxy_peak_rss_bytes: int | None
    proxy_rss_before_bytes: int | None  # before the viewers connected (the relay keeps what earlier points grew)
    upstream_cpu_s: float
    client_cpu_s: float
    per_viewer: list[dict[str, float]] = field(default_factory=list)  # p50, p99, max ms, received, lost
    errors: list[str] = field(default_factory=list)
    run: int = 0
    runs: int = 1
    spread: dict[str, list[float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _per(value: float | None, count: int) -> float | None:
    return value / count * 1e6 if value is not None and count else None


def make_fanout_point(
    route: str, frame_bytes: int, rate: float | None, result: dict[str, Any], proxy_cpu_s: float | None,
    proxy_peak_rss: int | None, upstream_cpu_s: float, relay_dropped: float | None, proxy_rss_before: int | None = None,
) -> FanoutPoint:
    """Turn the load generator's fan-out result (driver fields plus `viewers`) into a `FanoutPoint`."""
    inputs = int(result["inputs"])
    viewers = result["viewers"]
    per_viewer = []
    for v in viewers:
        summary = latency_summary(v["latencies_ns"])
        per_viewer.append({"p50": summary["p50"], "p99": summary["p99"], "max": summary["max"],
                           "received": v["received"], "lost": inputs - v["received"]})
    lost = [p["lost"] for p in per_viewer] or [0]
    by_seq: dict[int, list[int]] = {}
    for v in viewers:
        for seq, ns in zip(v["seqs"], v["latencies_ns"], strict=True):
            by_seq.setdefault(seq, []).append(ns)
    last_viewer = [max(samples) for samples in by_seq.values() if len(samples) == len(viewers)]
    viewer_received = sum(v["received"] for v in viewers)
    driver_received = int(result["received"])
    errors = list(result.get("errors", [])) + [e for v in viewers for e in v["errors"]]
    return FanoutPoint(
        route=route, viewers=len(viewers), frame_bytes=frame_bytes, rate=rate,
        duration_s=float(result["elapsed_s"]), inputs=inputs, driver_received=driver_received,
        driver_latency_ms=latency_summary(result["latencies_ns"]),
        viewer_latency_ms=latency_summary([ns for v in viewers for ns in v["latencies_ns"]]),
        last_viewer_ms=latency_summary(last_viewer),
        viewer_received=viewer_received, lost_per_viewer_mean=sum(lost) / len(lost), lost_per_viewer_max=max(lost),
        relay_dropped=relay_dropped, waiting_seen=sum(bool(v["waiting_seen"]) for v in viewers),
        proxy_cpu_s=proxy_cpu_s, proxy_cpu_us_per_input=_per(proxy_cpu_s, inputs),
        proxy_cpu_us_per_frame=_per(proxy_cpu_s, driver_received + viewer_received),
        proxy_peak_rss_bytes=proxy_peak_rss, proxy_rss_before_bytes=proxy_rss_before, upstream_cpu_s=upstream_cpu_s,
        client_cpu_s=float(result["client_cpu_s"]), per_viewer=per_viewer, errors=errors[:20],
    )
