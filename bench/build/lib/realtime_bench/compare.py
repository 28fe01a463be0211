"""`--target URL [--compare URL]`: a deployment (or fal itself), and optionally a second one, point by point.

Each point is measured on the target, then on the comparison, `--repeat` times with the order
rotating, so drift (a busy GPU, a noisy network) hits both alike; the report gives the comparison's
figures divided by the target's. With `--target wss://fal.run --compare wss://relay.example.com`,
that is what the relay adds in front of fal. No server is started: nothing here needs nginx or
the embedded apps.

A real target costs its owner money, so every point is bounded by `--max-frames` and `--duration`,
the default run against a non-local target is small, and what it will send is printed before the
first input leaves.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from .load import RENDER_INPUT, LoadSpec
from .procs import Route
from .progress import progress_bar
from .record import Interrupted, Record, stop_on_signals
from .runner import LoadFailed, measure
from .spread import ratio_spreads
from .stats import Point, comparisons
from .sweep import interleave
from .target import Endpoint, TicketError

# A non-local target is measured briefly unless asked for more: what a first run should cost.
REMOTE_DEFAULTS = {"duration": 10.0, "max_frames": 30, "warmup": 2}
LOCAL_DEFAULTS = {"duration": 4.0, "max_frames": 200_000, "warmup": 20}


def point_key(p: Point) -> tuple[str, int, float | None, int]:
    """One point of the target phase: route, image size, rate, sessions."""
    return p.route, p.image_bytes, p.rate, p.sessions


def payload(text: str | None) -> dict[str, Any]:
    """`--input`: a JSON object, or @path to a file holding one; by default a 4-step 512² render."""
    if not text:
        return dict(RENDER_INPUT)
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"--input must be a JSON object, not {type(value).__name__}")
    return value


def endpoints(args: argparse.Namespace) -> list[Endpoint]:
    """The target, and the comparison (which takes the target's credentials unless given its own)."""
    eps = [Endpoint("target", args.target, args.app, args.key, args.ticket, args.ticket_url)]
    if args.compare:
        own = args.compare_key or args.compare_ticket or args.compare_ticket_url
        eps.append(Endpoint("compare", args.compare, args.app,
                            args.compare_key if own else args.key, args.compare_ticket if own else args.ticket,
                            args.compare_ticket_url if own else args.ticket_url))
    return eps


def apply_defaults(args: argparse.Namespace, eps: list[Endpoint]) -> None:
    """Fill the bounds the user left unset: small for a non-local target, as a local sweep otherwise."""
    defaults = LOCAL_DEFAULTS if all(ep.local for ep in eps) else REMOTE_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def groups(args: argparse.Namespace, eps: list[Endpoint]) -> Iterator[tuple[str, list[tuple[Endpoint, LoadSpec]]]]:
    body = payload(args.input)
    for image in args.image_sizes or [0]:
        for rate in args.rates:
            for sessions in args.sessions:
                spec = LoadSpec(url="", mode="app", payload=body, image_bytes=image, rate=rate, sessions=sessions,
                                duration_s=args.duration, max_frames=args.max_frames, warmup_frames=args.warmup)
                yield "target", [(ep, spec) for ep in eps]


def budget(plan: list[tuple[str, int, Endpoint, LoadSpec]]) -> dict[str, Any]:
    """The most the run can send: every point's warm-up and measured frames, on every session."""
    inputs = sum(spec.sessions * (spec.warmup_frames + spec.max_frames) for _, _, _, spec in plan)
    seconds = sum(spec.duration_s for _, _, _, spec in plan)
    return {"points": len(plan), "max_inputs": inputs, "max_measured_seconds": seconds}


def announce(console: Console, eps: list[Endpoint], plan: list[tuple[str, int, Endpoint, LoadSpec]],
             args: argparse.Namespace) -> dict[str, Any]:
    """Say, before the first input leaves, where it goes and the most the run will send."""
    limits = budget(plan)
    images = ", ".join(f"{s // 1024} KB" for s in args.image_sizes if s) or "none"
    for ep in eps:
        console.print(f"{ep.name}: {ep.describe()}{'' if ep.local else ' [bold](not local: this spends credits)[/]'}")
    console.print(f"will send at most {limits['max_inputs']} inputs over {limits['points']} points "
                  f"(each at most {args.max_frames} frames per session or {args.duration:g} s, after {args.warmup} "
                  f"warm-up inputs); image inputs: {images}; Ctrl+C stops and writes what was measured")
    return limits


def run_targets(args: argparse.Namespace, console: Console, record: Record) -> dict[str, Any]:
    eps = endpoints(args)
    plan = interleave(groups(args, eps), args.repeat)
    record.meta.update(routes={ep.name: {"available": True, "reason": "", "url": ep.url, "local": ep.local}
                               for ep in eps},
                       app=args.app, budget=announce(console, eps, plan, args), input=payload(args.input))
    try:
        with stop_on_signals(), progress_bar(console, len(plan)) as step:
            for _, run, ep, spec in plan:
                rate = f"{spec.rate:g}/s" if spec.rate else "closed loop"
                image = f", {spec.image_bytes // 1024} KB image in" if spec.image_bytes else ""
                step(f"{ep.name}: {rate}{image} × {spec.sessions}" + (f" (run {run + 1}/{args.repeat})"
                                                                      if args.repeat > 1 else ""))
                record.add("target", measure(Route(ep.name, ep.base_url), ep.credentials(spec), None, run=run))
    except (Interrupted, LoadFailed, TicketError) as exc:
        record.stop(exc)
    points = record.medians("target", point_key)
    rows = comparisons(points, "compare", ["target"]) if args.compare else []
    ratio_spreads(rows, record.runs.get("target", []))
    meta = record.meta
    return {"meta": meta | {"partial": False}, "routes": meta["routes"], "target": [p.to_json() for p in points],
            "comparisons": {"target": rows}, "targets": [], "runs": record.raw()}
