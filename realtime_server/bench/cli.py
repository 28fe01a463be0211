"""`realtime-bench`: start the routes, run the sweep with a progress bar, write table, JSON and PNG.

The transport mode (default) measures the `local/echo` app over every route: a closed-loop sweep
over frame sizes on one session, an open-loop sweep over concurrent sessions at a set input rate,
a live-session fan-out on the relay (one driver at a set input rate, 1, 10, 100 viewers), and a
stalled viewer on the relay. The render mode measures
`local/preview` end to end instead.
Points are taken route after route for each size, so drift on a busy machine hits all routes alike.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import procs
from .load import LoadSpec
from .procs import Route
from .report import print_report, write_outputs
from .runner import RssSampler, measure, measure_fanout
from .stats import FanoutPoint, Point, check_targets, comparisons

logger = logging.getLogger(__name__)
ROUTES = ("direct", "relay", "nginx", "floor")
FLOOR_MODULE = "realtime_server.bench.floor"  # for scale: a bare Python TCP forwarder, frame sizes only


def _ints(text: str) -> list[int]:
    units = {"k": 1024, "m": 1024 * 1024}
    out = []
    for item in text.split(","):
        item = item.strip().lower().removesuffix("b")
        mult = units.get(item[-1:], 1)
        out.append(int(float(item[:-1] if mult > 1 else item) * mult))
    return out


def _counts(text: str) -> list[int]:
    """A comma-separated list of counts; empty or "0" means none (skip that part of the sweep)."""
    return [n for n in _ints(text) if n > 0] if text.strip() else []


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="realtime-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("transport", "render"), default="transport",
                        help="transport: local/echo over every route (default); render: local/preview end to end")
    parser.add_argument("--routes", default=",".join(ROUTES), help="comma-separated subset of %(default)s")
    parser.add_argument("--sizes", type=_ints, default=_ints("4k,64k,512k"), help="reply frame sizes (4k,64k,512k)")
    parser.add_argument("--sessions", type=_counts, default=[1, 10, 50, 200],
                        help="concurrency sweep (1,10,50,200); 0 skips it")
    parser.add_argument("--rate", type=float, default=10.0, help="inputs/s per session in the concurrency sweep")
    parser.add_argument("--concurrency-frame-bytes", type=lambda t: _ints(t)[0], default=65536,
                        help="reply size in the concurrency sweep (64k)")
    parser.add_argument("--input-bytes", type=int, default=200, help="size of each input frame")
    parser.add_argument("--image-inputs", type=_counts, default=[65536],
                        help="image-to-image: inputs carrying image_bytes of these sizes, 64 KB replies, closed "
                             "loop (64k); 0 skips")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per frame-size point")
    parser.add_argument("--concurrency-duration", type=float, default=4.0, help="seconds per concurrency point")
    parser.add_argument("--max-frames", type=int, default=200_000, help="cap on frames per session per point")
    parser.add_argument("--warmup", type=int, default=50, help="round trips per session before measuring")
    parser.add_argument("--fanout", type=_counts, default=[1, 10, 100],
                        help="viewers of one live session on the relay (1,10,100); 0 skips the fan-out")
    parser.add_argument("--fanout-rate", type=float, default=20.0, help="inputs/s the fan-out's driver sends")
    parser.add_argument("--fanout-frame-bytes", type=lambda t: _ints(t)[0], default=65536,
                        help="reply size in the fan-out (64k)")
    parser.add_argument("--fanout-duration", type=float, default=8.0, help="seconds per fan-out point")
    parser.add_argument("--stall-seconds", type=float, default=4.0, help="stalled-viewer check; 0 skips it")
    parser.add_argument("--stall-rate", type=float, default=30.0, help="inputs/s the stalled viewer sends")
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench"), help="output directory")
    parser.add_argument("--nginx", default=None, help="nginx binary (default: nginx on PATH, else /usr/sbin/nginx)")
    parser.add_argument("--relay-log", type=Path, default=None, help="write the relay's log here")
    args = parser.parse_args(argv)
    args.routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    unknown = set(args.routes) - set(ROUTES)
    if unknown:
        parser.error(f"unknown route(s) {', '.join(sorted(unknown))}; choose from {', '.join(ROUTES)}")
    return args


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_at_start": [round(x, 2) for x in load]}


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


def plan(args: argparse.Namespace, routes: dict[str, Route]) -> Iterator[tuple[str, Route, LoadSpec]]:
    """Every point of the sweep, in the order it runs: (phase, route, spec)."""
    live = [r for r in routes.values() if r.available]
    app = "local/preview" if args.mode == "render" else "local/echo"
    base = {"mode": "render" if args.mode == "render" else "echo", "input_bytes": args.input_bytes,
            "max_frames": args.max_frames, "warmup_frames": args.warmup}
    sizes = [0] if args.mode == "render" else args.sizes
    for size in sizes:
        for route in live:
            yield "sizes", route, LoadSpec(url=route.url(app), headers=route.headers, frame_bytes=size,
                                           duration_s=args.duration, **base)
    if args.mode == "render":
        return
    for input_bytes in args.image_inputs:
        for route in live:
            yield "inputs", route, LoadSpec(url=route.url(app), headers=route.headers, frame_bytes=65536,
                                            duration_s=args.duration, **base | {"input_bytes": input_bytes,
                                                                                 "image": True})
    for sessions in args.sessions:
        for route in (r for r in live if r.name != "floor"):
            yield "concurrency", route, LoadSpec(
                url=route.url(app), headers=route.headers, sessions=sessions, rate=args.rate,
                frame_bytes=args.concurrency_frame_bytes, duration_s=args.concurrency_duration,
                **base | {"warmup_frames": min(args.warmup, 5)},
            )
    relay = routes.get("relay")
    if relay is not None and relay.available:
        for viewers in args.fanout:
            yield "fanout", relay, LoadSpec(
                url=relay.url(app), viewers=viewers, rate=args.fanout_rate, frame_bytes=args.fanout_frame_bytes,
                duration_s=args.fanout_duration, **base | {"warmup_frames": min(args.warmup, 5)},
            )


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


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    started = time.monotonic()
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "mode": args.mode, "machine": machine(),
        "command": " ".join(["realtime-bench", *sys.argv[1:]]), "rate": args.rate,
        "concurrency_frame_bytes": args.concurrency_frame_bytes, "input_bytes": args.input_bytes,
        "fanout_rate": args.fanout_rate, "fanout_frame_bytes": args.fanout_frame_bytes,
        "client": "websockets (asyncio, uvloop), one process", "upstream": "local/echo (fal SDK app, uvicorn)"
        if args.mode == "transport" else "local/preview (fal SDK app, CPU renderer)",
    }
    sizes: list[Point] = []
    inputs: list[Point] = []  # image-to-image: large inputs
    conc: list[Point] = []
    fanout: list[FanoutPoint] = []
    stalls: list[dict[str, Any]] = []
    with ExitStack() as stack:
        upstream_url, upstream = stack.enter_context(procs.upstream())
        buffer_bytes = max([*args.sizes, args.concurrency_frame_bytes, 1024 * 1024]) + 64
        routes = start_routes(stack, args, upstream_url, buffer_bytes)
        points = list(plan(args, routes))
        stall_routes = [routes[r] for r in ("relay",) if r in routes and routes[r].available]
        if args.mode != "transport" or args.stall_seconds <= 0:
            stall_routes = []
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("realtime-bench", total=len(points) + len(stall_routes))
            for phase, route, spec in points:
                if phase == "fanout":
                    progress.update(task, description=f"fan-out: {route.name} 1 driver → {spec.viewers} viewers")
                    fanout.append(measure_fanout(route, spec, upstream))
                else:
                    label = f"{phase}: {route.name} {spec.frame_bytes // 1024} KB × {spec.sessions}"
                    if phase == "inputs":
                        label += f", {spec.input_bytes // 1024} KB inputs"
                    progress.update(task, description=label)
                    point = measure(route, spec, upstream)
                    {"sizes": sizes, "inputs": inputs, "concurrency": conc}[phase].append(point)
                progress.advance(task)
            for route in stall_routes:
                progress.update(task, description=f"stalled viewer: {route.name}")
                stalls.append(stalled_viewer(args, route, upstream))
                progress.advance(task)
        meta["routes"] = {name: {"available": r.available, "reason": r.reason} for name, r in routes.items()}
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    # Who is compared with whom: the relay with direct and nginx, nginx with direct (what a tuned C proxy
    # costs), and the bare Python forwarder with nginx (what any Python relay costs at least).
    pairs = {"relay": ("direct", "nginx"), "nginx": ("direct",), "floor": ("nginx",)}
    present = set(meta["routes"])
    growth = {s["route"]: s["growth_bytes"] for s in stalls}
    result: dict[str, Any] = {
        "meta": meta, "routes": meta.pop("routes"),
        "sizes": [p.to_json() for p in sizes], "inputs": [p.to_json() for p in inputs],
        "concurrency": [p.to_json() for p in conc],
        "fanout": [p.to_json() for p in fanout],
        "comparisons": {
            phase: [row for subj, bases in pairs.items() if subj in present
                    for row in comparisons(pts, subj, [b for b in bases if b in present])]
            for phase, pts in (("sizes", sizes), ("inputs", inputs), ("concurrency", conc))
        },
        "stall": stalls,
        "targets": [
            t.__dict__ | {"route": subject}
            for subject in ("relay",) if subject in present and args.mode == "transport"
            for t in check_targets(sizes, conc, growth.get(subject),
                                   subject=subject, frame_bytes=65536 if 65536 in args.sizes else max(args.sizes),
                                   busy_sessions=max(args.sessions, default=0))
        ],
    }
    return result


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    # Piped output (CI logs, `| tee`) gets a width that fits the tables instead of 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    result = run(args, console)
    print_report(result, console)
    paths = write_outputs(result, args.out, console)
    console.print(f"wrote {paths['table']}, {paths['json']}, {paths['png']} in {result['meta']['elapsed_s']:g} s")


if __name__ == "__main__":
    main()
