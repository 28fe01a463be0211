"""The local sweep: the embedded apps over every route on loopback (direct, relay, nginx, floor).

The transport mode (default) measures the `local/echo` app over every route: a closed-loop sweep
over frame sizes on one session, image inputs (a webcam image-to-image stream: JPEG inputs of
16, 64, 256 KB answered with frames of the same size, closed loop and at 10 and 30 inputs/s), an
open-loop sweep over concurrent sessions at a set input rate, a live-session fan-out on the relay
(one driver at a set input rate, 1, 10, 100 viewers), and a stalled viewer on the relay. The render
mode measures `local/preview` end to end instead.

Each point is taken on every route, `--repeat` times, before the next point: the routes' order
rotates from run to run, so drift on a busy machine and any first-after-a-change effect hit all
routes alike. Figures are the medians over the runs, with their min–max.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from rich.console import Console

from . import procs
from .load import LoadSpec
from .procs import Route
from .progress import progress_bar
from .record import Interrupted, Record, stop_on_signals
from .runner import LoadFailed, RssSampler, measure, measure_fanout
from .spread import ratio_spreads
from .stats import Target, check_image_targets, check_targets, comparisons

ROUTES = ("direct", "relay", "nginx", "floor")
FLOOR_MODULE = "realtime_bench.floor"  # for scale: a bare Python TCP forwarder, frame sizes only
# Who is compared with whom: the relay with direct and nginx, nginx with direct (what a tuned C proxy
# costs), and the bare Python forwarder with nginx (what any Python relay costs at least).
PAIRS = {"relay": ("direct", "nginx"), "nginx": ("direct",), "floor": ("nginx",)}
KEYS = {
    "sizes": lambda p: (p.route, p.frame_bytes, p.sessions),
    "images": lambda p: (p.route, p.image_bytes, p.rate),
    "concurrency": lambda p: (p.route, p.sessions),
    "fanout": lambda p: (p.route, p.viewers),
}


def start_routes(stack: ExitStack, args: argparse.Namespace, upstream_url: str, buffer_bytes: int) -> dict[str, Route]:
    routes: dict[str, Route] = {}
    for name in args.routes:
        if name == "direct":
            routes[name] = Route("direct", upstream_url)
        elif name == "relay":
            routes[name] = stack.enter_context(procs.relay(upstream_url, log_path=args.relay_log))
        elif name == "floor":
            routes[name] = stack.enter_context(procs.relay(upstream_url, module=FLOOR_MODULE, name="floor"))
        elif name == "nginx":
            routes[name] = stack.enter_context(procs.nginx(upstream_url, buffer_bytes, args.nginx))
    return routes


def groups(args: argparse.Namespace, routes: dict[str, Route]) -> Iterator[tuple[str, list[tuple[Route, LoadSpec]]]]:
    """Every point of the sweep, in the order it runs: (phase, the same spec on each of its routes)."""
    live = [r for r in routes.values() if r.available]
    app = "local/preview" if args.mode == "render" else "local/echo"
    base = {"mode": "app" if args.mode == "render" else "echo", "input_bytes": args.input_bytes,
            "max_frames": args.max_frames, "warmup_frames": args.warmup}
    short_warmup = base | {"warmup_frames": min(args.warmup, 5)}
    for size in [0] if args.mode == "render" else args.sizes:
        yield "sizes", [(r, LoadSpec(url=r.url(app), headers=r.headers, frame_bytes=size, duration_s=args.duration,
                                     **base)) for r in live]
    if args.mode == "render":
        return
    proxies = [r for r in live if r.name != "floor"]  # the floor is measured on frame sizes only
    for image in args.image_sizes:
        for rate in args.image_rates:
            yield "images", [(r, LoadSpec(url=r.url(app), headers=r.headers, frame_bytes=image, image_bytes=image,
                                          rate=rate, duration_s=args.image_duration, **short_warmup))
                             for r in proxies]
    for sessions in args.sessions:
        yield "concurrency", [(r, LoadSpec(url=r.url(app), headers=r.headers, sessions=sessions, rate=args.rate,
                                           frame_bytes=args.concurrency_frame_bytes,
                                           duration_s=args.concurrency_duration, **short_warmup)) for r in proxies]
    relay = routes.get("relay")
    if relay is not None and relay.available:
        for viewers in args.fanout:
            yield "fanout", [(relay, LoadSpec(url=relay.url(app), viewers=viewers, rate=args.fanout_rate,
                                              frame_bytes=args.fanout_frame_bytes, duration_s=args.fanout_duration,
                                              **short_warmup))]


def interleave(point_groups: Iterator[tuple[str, list[Any]]], repeat: int) -> list[tuple[str, int, Any, Any]]:
    """Each group `repeat` times before the next, its routes' order rotated by one per run.

    Returns (phase, run, route, spec) in the order they run.
    """
    plan: list[tuple[str, int, Any, Any]] = []
    for phase, group in point_groups:
        for run in range(repeat):
            k = run % len(group) if group else 0
            plan.extend((phase, run, route, spec) for route, spec in group[k:] + group[:k])
    return plan


def stalled_viewer(args: argparse.Namespace, route: Route, upstream: procs.ProcessProbe) -> dict[str, Any]:
    """A viewer that sends inputs for large frames and never reads: the relay's RSS must stay flat."""
    frame = max(args.sizes)
    spec = LoadSpec(url=route.url("local/echo"), headers=route.headers, rate=args.stall_rate, frame_bytes=frame,
                    input_bytes=args.input_bytes, duration_s=args.stall_seconds, warmup_frames=2, read=False,
                    drain_s=0.0)
    assert route.probe is not None
    sampler = RssSampler(route.probe)
    point = measure(route, spec, upstream, sampler)
    samples = sampler.samples or [(0.0, route.probe.rss_bytes())]
    settle = [rss for t, rss in samples if t <= 1.0] or [samples[0][1]]
    return {
        "route": route.name, "frame_bytes": frame, "rate": spec.rate, "duration_s": spec.duration_s,
        "sent": point.sent, "rss_start_bytes": max(settle), "rss_end_bytes": samples[-1][1],
        "rss_max_bytes": max(rss for _, rss in samples),
        "growth_bytes": max(0, max(rss for _, rss in samples) - max(settle)),
        "samples": [[round(t, 2), rss] for t, rss in samples],
    }


def _label(phase: str, route: Route, spec: LoadSpec, run: int, repeat: int) -> str:
    tail = f" (run {run + 1}/{repeat})" if repeat > 1 else ""
    if phase == "fanout":
        return f"fan-out: {route.name} 1 driver → {spec.viewers} viewers{tail}"
    if phase == "images":
        rate = f"{spec.rate:g}/s" if spec.rate else "closed loop"
        return f"images: {route.name} {spec.image_bytes // 1024} KB in, {rate}{tail}"
    return f"{phase}: {route.name} {spec.frame_bytes // 1024} KB × {spec.sessions}{tail}"


def run_local(args: argparse.Namespace, console: Console, record: Record) -> dict[str, Any]:
    """Start the routes, run every point `--repeat` times interleaved, and build the result from the medians."""
    stalls: list[dict[str, Any]] = []
    with ExitStack() as stack:
        upstream_url, upstream = stack.enter_context(procs.upstream())
        buffer_bytes = max([*args.sizes, *args.image_sizes, args.concurrency_frame_bytes, 1024 * 1024]) + 64
        routes = start_routes(stack, args, upstream_url, buffer_bytes)
        record.meta["routes"] = {name: {"available": r.available, "reason": r.reason} for name, r in routes.items()}
        plan = interleave(groups(args, routes), args.repeat)
        stall_routes = [routes[r] for r in ("relay",) if r in routes and routes[r].available]
        if args.mode != "transport" or args.stall_seconds <= 0:
            stall_routes = []
        try:
            with stop_on_signals(), progress_bar(console, len(plan) + len(stall_routes)) as step:
                for phase, run, route, spec in plan:
                    step(_label(phase, route, spec, run, args.repeat))
                    if phase == "fanout":
                        record.add(phase, measure_fanout(route, spec, upstream, run=run))
                    else:
                        record.add(phase, measure(route, spec, upstream, run=run))
                for route in stall_routes:
                    step(f"stalled viewer: {route.name}")
                    stalls.append(stalled_viewer(args, route, upstream))
        except (Interrupted, LoadFailed) as exc:
            record.stop(exc)
    return local_result(args, record, stalls)


def local_result(args: argparse.Namespace, record: Record, stalls: list[dict[str, Any]]) -> dict[str, Any]:
    meta = record.meta
    points = {phase: record.medians(phase, key) for phase, key in KEYS.items()}
    present = set(meta.get("routes", {}))
    growth = {s["route"]: s["growth_bytes"] for s in stalls}
    cmp: dict[str, list[dict[str, Any]]] = {}
    for phase in ("sizes", "images", "concurrency"):
        rows = [row for subj, bases in PAIRS.items() if subj in present
                for row in comparisons(points[phase], subj, [b for b in bases if b in present])]
        ratio_spreads(rows, record.runs.get(phase, []))
        cmp[phase] = rows
    targets: list[Target] = []
    if "relay" in present and args.mode == "transport":
        targets = check_targets(points["sizes"], points["concurrency"], growth.get("relay"), subject="relay",
                                frame_bytes=65536 if 65536 in args.sizes else max(args.sizes),
                                busy_sessions=max(args.sessions, default=0))
        targets += check_image_targets(points["images"], subject="relay")
    return {
        "meta": meta | {"partial": False}, "routes": meta.get("routes", {}),
        **{phase: [p.to_json() for p in pts] for phase, pts in points.items()},
        "comparisons": cmp, "stall": stalls,
        "targets": [t.__dict__ | {"route": "relay"} for t in targets],
        "runs": record.raw(),
    }
