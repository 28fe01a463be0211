"""realtime-bench against any target: two local relays, one behind a deliberately slow upstream.

The fast relay fronts the embedded `local/preview` (fal's SDK, the CPU renderer); the slow one, in
dev mode (tickets from its own `/dev/ticket`), fronts an image app that takes `SLOW_S` per frame
and says so in `timings`, as fal's apps do. Everything runs on loopback.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from PIL import Image
from rich.console import Console
from websockets.asyncio.server import ServerConnection, serve

from realtime_bench import procs
from realtime_bench.cli import parse_args
from realtime_bench.compare import announce, apply_defaults, endpoints, groups
from realtime_bench.sweep import interleave
from realtime_server import tickets
from realtime_server.cli import free_port

SLOW_S = 0.12  # the slow upstream's own time per frame, reported as timings.inference
APP = "local/preview"


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


async def _slow_app(ws: ServerConnection) -> None:
    """An image app that takes SLOW_S per input and reports it, as fal's `timings.inference` does."""
    image = _jpeg()
    async for message in ws:
        inputs = msgpack.unpackb(message, raw=False) if isinstance(message, bytes) else {}
        await asyncio.sleep(SLOW_S)
        await ws.send(msgpack.packb({
            "images": [{"content": image, "content_type": "image/jpeg", "width": 64, "height": 64}],
            "seed": inputs.get("seed"), "timings": {"inference": SLOW_S},
        }, use_bin_type=True))


@pytest.fixture(scope="module")
def slow_upstream() -> Iterator[str]:
    """The slow app on a loopback port, served from its own thread and event loop."""
    port = free_port()
    ready, stop = threading.Event(), threading.Event()

    async def main() -> None:
        async with serve(_slow_app, "127.0.0.1", port, compression=None, max_size=None):
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"ws://127.0.0.1:{port}"
    stop.set()
    thread.join(10)


@pytest.fixture(scope="module")
def fast_relay() -> Iterator[procs.Route]:
    with procs.upstream() as (url, _), procs.relay(url, apps=APP) as route:
        yield route


@pytest.fixture(scope="module")
def slow_dev_relay(slow_upstream: str) -> Iterator[str]:
    """A relay in dev mode (no shared secret: it mints tickets at /dev/ticket) in front of the slow app."""
    with procs.relay(slow_upstream, apps=APP, dev_mode=True) as route:
        assert route.base_url is not None
        yield route.base_url.removeprefix("ws://")


def _bench(args: list[str], out: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FAL_KEY"}
    return subprocess.run([sys.executable, "-m", "realtime_bench", *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_compare_shows_the_slow_upstream_and_where_its_time_goes(
        fast_relay: procs.Route, slow_dev_relay: str, tmp_path: Path) -> None:
    """--target (a ticket) vs --compare (tickets from --ticket-url): the slow one's ratio, its upstream split."""
    assert fast_relay.secret is not None
    ticket = tickets.mint(fast_relay.secret, sub="bench-test", apps=[APP], issuer="test", lifetime=300)
    done = _bench(["--target", fast_relay.base_url or "", "--ticket", ticket, "--app", APP,
                   "--compare", f"ws://{slow_dev_relay}", "--compare-ticket-url", f"http://{slow_dev_relay}/dev/ticket",
                   "--repeat", "2", "--max-frames", "6", "--duration", "3", "--warmup", "1"], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "will send at most 28 inputs over 4 points" in done.stdout  # 2 targets x 2 runs x (1 + 6)
    result = json.loads((tmp_path / "bench.json").read_text())
    assert [r["route"] for r in result["runs"]["target"]] in (["target", "compare", "compare", "target"],)
    points = {p["route"]: p for p in result["target"]}
    assert points["target"]["runs"] == points["compare"]["runs"] == 2
    for p in points.values():
        assert p["received"] == 6 and p["lost"] == 0 and not p["errors"]
        lo, hi = p["spread"]["latency_ms.p50"]
        assert lo <= p["latency_ms"]["p50"] <= hi
    slow, fast = points["compare"], points["target"]
    assert slow["latency_ms"]["p50"] >= SLOW_S * 1000
    # The split: the slow app's own time is what it reported, and the rest is the network and the relay.
    assert slow["upstream_ms"]["inference"]["p50"] == pytest.approx(SLOW_S * 1000)
    assert 0 < slow["remainder_ms"]["p50"] == pytest.approx(slow["latency_ms"]["p50"] - SLOW_S * 1000, abs=0.01)
    assert fast["upstream_ms"]["inference"]["p50"] > 0  # local/preview reports its own render time
    assert fast["remainder_ms"]["p50"] == pytest.approx(
        fast["latency_ms"]["p50"] - fast["upstream_ms"]["inference"]["p50"], abs=fast["latency_ms"]["p50"] / 2)
    (row,) = result["comparisons"]["target"]
    assert row["route"] == "compare" and row["vs_target"]["ratio"]["p50"] > 1.3
    assert row["vs_target"]["added_ms"]["p50"] > 40
    assert set(row["vs_target"]["ratio_spread"]) >= {"p50", "p99", "frames_per_s"}
    assert "Where the time goes" in done.stdout and "inference" in done.stdout


def test_ctrl_c_stops_and_writes_what_was_measured(fast_relay: procs.Route, tmp_path: Path) -> None:
    """SIGINT mid-run: the run stops at once, exits 130, and the outputs hold the points measured before."""
    cmd = [sys.executable, "-m", "realtime_bench", "--target", fast_relay.base_url or "", "--app", APP,
           "--key", procs.BENCH_KEY, "--repeat", "3", "--rates", "0,20", "--duration", "1.5", "--warmup", "1",
           "--out", str(tmp_path)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if json.loads((tmp_path / "bench.json").read_text())["runs"].get("target"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        started = time.monotonic()
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert time.monotonic() - started < 10
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["meta"]["partial"] is False and "Interrupted: SIGINT" in result["meta"]["stopped"]
    assert 1 <= len(result["runs"]["target"]) < 12 and result["target"]
    assert (tmp_path / "bench.txt").exists() and (tmp_path / "bench.png").exists()
    assert "Traceback" not in stderr


def test_a_remote_target_defaults_small_and_says_what_it_will_send() -> None:
    """Against a non-local target the bounds default small, and the plan is announced before anything is sent."""
    args = parse_args(["--target", "wss://fal.run", "--compare", "wss://relay.example.com", "--app",
                       "fal-ai/fast-lcm-diffusion", "--key", "k"])
    eps = endpoints(args)
    assert [ep.local for ep in eps] == [False, False]
    apply_defaults(args, eps)
    assert (args.duration, args.max_frames, args.warmup, args.repeat) == (10.0, 30, 2, 3)
    plan = interleave(groups(args, eps), args.repeat)
    console = Console(record=True, width=200)
    limits = announce(console, eps, plan, args)
    text = console.export_text()
    assert limits == {"points": 6, "max_inputs": 192, "max_measured_seconds": 60.0}
    assert "wss://fal.run/fal-ai/fast-lcm-diffusion/realtime (a key) (not local: this spends credits)" in text
    assert "will send at most 192 inputs over 6 points" in text


def test_bad_target_arguments_are_refused_plainly(tmp_path: Path) -> None:
    """No credentials, a non-ws URL or --compare alone: a one-line error, nothing sent."""
    done = _bench(["--target", "ws://127.0.0.1:9", "--app", APP], tmp_path, timeout=30)
    assert done.returncode == 2 and "no credentials for target ws://127.0.0.1:9" in done.stdout
    done = _bench(["--target", "http://127.0.0.1:9", "--app", APP, "--key", "k"], tmp_path, timeout=30)
    assert done.returncode == 2 and "target URL must be ws:// or wss://" in done.stdout
    with pytest.raises(SystemExit):
        parse_args(["--compare", "ws://127.0.0.1:9"])
    assert not (tmp_path / "bench.json").exists()




def test_browser_mode_on_two_deployed_relays(fast_relay: procs.Route, slow_dev_relay: str, tmp_path: Path) -> None:
    """--mode browser with --target (a ticket) and --compare (a ticket URL): each widget's split, the slow app's own."""
    assert fast_relay.secret is not None
    ticket = tickets.mint(fast_relay.secret, sub="bench-test", apps=[APP], issuer="test", lifetime=300)
    done = _bench(["--mode", "browser", "--target", fast_relay.base_url or "", "--ticket", ticket, "--app", APP,
                   "--compare", f"ws://{slow_dev_relay}", "--compare-ticket-url", f"http://{slow_dev_relay}/dev/ticket",
                   "--repeat", "1", "--max-frames", "4", "--warmup", "1"], tmp_path, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    points = {p["route"]: p for p in result["browser"]}
    assert set(points) == {"target", "compare"}
    assert all(p["frames"] == 4 and not p["errors"] for p in points.values())
    assert points["compare"]["upstream_ms"]["p50"] == pytest.approx(SLOW_S * 1000)
    assert points["compare"]["input_to_pixels_ms"]["p50"] > SLOW_S * 1000
    assert 0 < points["target"]["upstream_ms"]["p50"] < points["target"]["round_trip_ms"]["p50"]


def test_browser_mode_refuses_a_key_it_cannot_send(tmp_path: Path) -> None:
    """A page cannot send `Authorization: Key`: browser mode against a target asks for a ticket instead."""
    done = _bench(["--mode", "browser", "--target", "ws://127.0.0.1:9", "--app", APP, "--key", "k"], tmp_path,
                  timeout=30)
    assert done.returncode == 2
    assert "--mode browser needs a ticket or a ticket URL for target" in done.stdout
