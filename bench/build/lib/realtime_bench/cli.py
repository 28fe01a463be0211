"""`realtime-bench`: what the relay costs, on loopback or in front of a real deployment.

Local sweep (default): the embedded `local/echo` app over every route (direct, relay, tuned nginx,
a bare forwarder), frame sizes, image inputs, concurrency, live-session fan-out; `--mode render`
measures `local/preview` end to end instead. `--target URL [--compare URL]`: a deployed relay or
fal itself, and a second target interleaved point by point, with the ratios. `--mode browser`:
the `<fal-live-canvas>` widget in Chromium, input to pixels.

Every point runs `--repeat` times, interleaved; figures are medians with their min–max, and the
JSON keeps every run. Open-loop round trips count from each input's scheduled send time.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from .record import Record
from .report import print_report, write_outputs
from .sweep import ROUTES

logger = logging.getLogger(__name__)


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


def _rates(text: str) -> list[float | None]:
    """Inputs/s, comma-separated; 0 is a closed loop (the next input when the reply is in)."""
    return [float(r) or None for r in text.split(",") if r.strip()]


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realtime-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("transport", "render", "browser"), default="transport",
                        help="transport: local/echo over every route (default); render: local/preview end to end; "
                             "browser: the widget in Chromium, input to pixels")
    parser.add_argument("--repeat", type=_positive(int), default=3,
                        help="runs of every point, interleaved; figures are medians with min–max (3)")
    bounds = parser.add_argument_group("bounds (every point stops at whichever comes first)")
    bounds.add_argument("--duration", type=_positive(float), default=None,
                        help="seconds per point (4; 10 against a non-local target)")
    bounds.add_argument("--max-frames", type=_positive(int), default=None,
                        help="frames per session per point (200000; 30 against a non-local target)")
    bounds.add_argument("--warmup", type=int, default=None,
                        help="round trips per session before measuring (50; 2 against a non-local target)")
    remote = parser.add_argument_group("any target (no local servers are started)")
    remote.add_argument("--target", help="ws:// or wss:// base of a deployed relay or of fal (wss://fal.run)")
    remote.add_argument("--compare", help="a second base URL, measured interleaved with --target; ratios vs it")
    remote.add_argument("--app", help="owner/alias of the app to open, e.g. fal-ai/fast-lcm-diffusion")
    remote.add_argument("--key", default=os.environ.get("FAL_KEY"),
                        help="sent as 'Authorization: Key ...' (default: $FAL_KEY)")
    remote.add_argument("--ticket", help="a ticket, sent as ?fal_jwt_token=")
    remote.add_argument("--ticket-url", help="POSTed for a fresh ticket before each point")
    remote.add_argument("--compare-key", help="credentials for --compare when they differ from --target's")
    remote.add_argument("--compare-ticket")
    remote.add_argument("--compare-ticket-url")
    remote.add_argument("--input", help="the app's input: a JSON object or @file (default: a 4-step 512x512 "
                                        "prompt); every input gets its own seed")
    remote.add_argument("--rates", type=_rates, default=[None], help="inputs/s per session, 0 = closed loop (0)")
    local = parser.add_argument_group("local sweep")
    local.add_argument("--routes", default=",".join(ROUTES), help="comma-separated subset of %(default)s")
    local.add_argument("--sizes", type=_ints, default=_ints("4k,64k,512k"), help="reply frame sizes (4k,64k,512k)")
    local.add_argument("--sessions", type=_counts, default=None,
                       help="concurrency sweep (1,10,50,200; a target: 1); 0 skips it")
    local.add_argument("--rate", type=float, default=10.0, help="inputs/s per session in the concurrency sweep")
    local.add_argument("--concurrency-frame-bytes", type=lambda t: _ints(t)[0], default=65536,
                       help="reply size in the concurrency sweep (64k)")
    local.add_argument("--concurrency-duration", type=float, default=4.0, help="seconds per concurrency point")
    local.add_argument("--input-bytes", type=int, default=200, help="size of each input frame")
    local.add_argument("--image-sizes", type=_counts, default=None,
                       help="image inputs: JPEGs of these sizes, answered with frames as large (16k,64k,256k; "
                            "a target: none); 0 skips them")
    local.add_argument("--image-rates", type=_rates, default=[None, 10.0, 30.0],
                       help="image inputs per second, 0 = closed loop (0,10,30)")
    local.add_argument("--image-duration", type=float, default=3.0, help="seconds per image point")
    local.add_argument("--fanout", type=_counts, default=[1, 10, 100],
                       help="viewers of one live session on the relay (1,10,100); 0 skips the fan-out")
    local.add_argument("--fanout-rate", type=float, default=20.0, help="inputs/s the fan-out's driver sends")
    local.add_argument("--fanout-frame-bytes", type=lambda t: _ints(t)[0], default=65536,
                       help="reply size in the fan-out (64k)")
    local.add_argument("--fanout-duration", type=float, default=8.0, help="seconds per fan-out point")
    local.add_argument("--stall-seconds", type=float, default=4.0, help="stalled-viewer check; 0 skips it")
    local.add_argument("--stall-rate", type=float, default=30.0, help="inputs/s the stalled viewer sends")
    local.add_argument("--nginx", default=None, help="nginx binary (default: nginx on PATH, else /usr/sbin/nginx)")
    local.add_argument("--relay-log", type=Path, default=None, help="write the relay's log here")
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench"), help="output directory")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    args.routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    unknown = set(args.routes) - set(ROUTES)
    if unknown:
        parser.error(f"unknown route(s) {', '.join(sorted(unknown))}; choose from {', '.join(ROUTES)}")
    if args.compare and not args.target:
        parser.error("--compare needs --target: it is measured against it")
    if args.target and not args.app:
        parser.error("--target needs --app (owner/alias), e.g. --app fal-ai/fast-lcm-diffusion")
    if args.target and args.mode == "render":
        parser.error("--mode render measures the embedded local/preview; a target takes --input instead")
    remote = bool(args.target)
    if args.sessions is None:
        args.sessions = [1] if remote else [1, 10, 50, 200]
    if args.image_sizes is None:
        args.image_sizes = [] if remote else _ints("16k,64k,256k")
    if args.mode == "browser":  # each frame is rendered, decoded and painted: fewer of them
        for name, value in (("duration", 20.0), ("max_frames", 100), ("warmup", 5)):
            if getattr(args, name) is None:
                setattr(args, name, value)
    if not remote:  # a target's defaults depend on whether it is local: see compare.apply_defaults
        for name, value in (("duration", 4.0), ("max_frames", 200_000), ("warmup", 50)):
            if getattr(args, name) is None:
                setattr(args, name, value)
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


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "mode": args.mode, "machine": machine(),
        "command": " ".join(["realtime-bench", *sys.argv[1:]]), "repeat": args.repeat, "rate": args.rate,
        "concurrency_frame_bytes": args.concurrency_frame_bytes, "input_bytes": args.input_bytes,
        "fanout_rate": args.fanout_rate, "fanout_frame_bytes": args.fanout_frame_bytes,
        "image_rates": args.image_rates, "duration_s": args.duration, "max_frames": args.max_frames,
        "client": "websockets (asyncio, uvloop), one process",
        "open_loop": "round trips count from each input's scheduled send time (coordinated omission corrected)",
        "upstream": "local/echo (fal SDK app, uvicorn)" if args.mode == "transport" and not args.target
        else "local/preview (fal SDK app, CPU renderer)" if not args.target else args.target,
    }


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    started = time.monotonic()
    if args.target and args.mode != "browser":
        from .compare import apply_defaults, endpoints

        apply_defaults(args, endpoints(args))
    record = Record(_meta(args), args.out)
    if args.mode == "browser":
        from .browser import run_browser

        result = run_browser(args, console, record)
    elif args.target:
        from .compare import run_targets

        result = run_targets(args, console, record)
    else:
        from .sweep import run_local

        result = run_local(args, console, record)
    result["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    result["meta"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    # Piped output (CI logs, `| tee`) gets a width that fits the tables instead of 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    try:
        result = run(args, console)
    except ValueError as exc:  # a bad URL, app or input: said plainly, no traceback
        console.print(f"[red]realtime-bench: {exc}[/]")
        sys.exit(2)
    print_report(result, console)
    paths = write_outputs(result, args.out, console)
    console.print(f"wrote {paths['table']}, {paths['json']}, {paths['png']} in {result['meta']['elapsed_s']:g} s")
    if result["meta"].get("stopped"):
        console.print(f"[yellow]{result['meta']['stopped']}[/]")
        sys.exit(result["meta"].get("exit_code", 1))


if __name__ == "__main__":
    main()
