"""realtime-bench's smoke run: a tiny sweep over real servers, checking the outputs' shape, not the figures."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest

from realtime_bench import procs
from realtime_bench.cli import parse_args
from realtime_bench.nginx import NginxConfig, find_nginx
from realtime_bench.stats import LATENCY_KEYS, latency_summary, make_fanout_point, percentile

ROUTES = ("direct", "relay", "nginx", "floor")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One tiny sweep: two frame sizes, image inputs, one concurrency level, a tiny fan-out, a short stalled
    viewer, every route, one run (the spread of repeated runs is tested in test_bench_targets.py)."""
    out = tmp_path_factory.mktemp("bench")
    cmd = [
        sys.executable, "-m", "realtime_bench", "--sizes", "4k,64k", "--sessions", "3", "--rate", "20",
        "--duration", "0.4", "--concurrency-duration", "0.5", "--warmup", "3", "--stall-seconds", "0.6",
        "--fanout", "1,3", "--fanout-duration", "0.5", "--image-sizes", "16k,256k", "--image-rates", "0,30",
        "--image-duration", "0.5", "--repeat", "1", "--out", str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, out


def _check_point(point: dict[str, Any]) -> None:
    assert set(LATENCY_KEYS) <= set(point["latency_ms"])
    for key in LATENCY_KEYS:
        assert point["latency_ms"][key] > 0, (point["route"], key)
    assert point["latency_ms"]["p50"] <= point["latency_ms"]["p99"] <= point["latency_ms"]["max"]
    assert point["received"] > 0 and point["frames_per_s"] > 0 and point["bytes_per_s"] > 0
    if point["route"] == "direct":
        assert point["proxy_cpu_s"] is None
    else:
        assert point["proxy_cpu_s"] is not None and point["proxy_peak_rss_bytes"] > 0


def test_smoke_run_writes_table_json_and_png(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """The CLI prints the tables and writes bench.txt, bench.json and bench.png."""
    done, out = smoke
    for title in ("Frame sizes", "Image inputs", "Concurrency", "Fan-out", "Where the time goes", "Ratios", "Targets"):
        assert title in done.stdout
        assert title in (out / "bench.txt").read_text()
    assert "relay" in done.stdout and "direct" in done.stdout


def test_smoke_json_has_every_route_percentile_and_ratio(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Each route has positive percentiles for each size and concurrency; ratios and targets are there."""
    result = json.loads((smoke[1] / "bench.json").read_text())
    assert {"meta", "routes", "sizes", "images", "concurrency", "fanout", "comparisons", "stall", "targets",
            "runs"} <= set(result)
    assert result["meta"]["machine"]["nproc"] >= 1
    nginx_present = find_nginx() is not None
    assert result["routes"]["nginx"]["available"] is nginx_present
    measured = [r for r in ROUTES if result["routes"][r]["available"]]
    assert set(measured) == {"direct", "relay", "floor"} | ({"nginx"} if nginx_present else set())
    sizes = {(p["route"], p["frame_bytes"]) for p in result["sizes"]}
    assert sizes == {(r, s) for r in measured for s in (4096, 65536)}
    conc = {(p["route"], p["sessions"]) for p in result["concurrency"]}
    assert conc == {(r, 3) for r in measured if r != "floor"}  # the floor is measured on frame sizes only
    for point in result["sizes"] + result["concurrency"]:
        _check_point(point)
    vs = {key for row in result["comparisons"]["sizes"] if row["route"] == "relay" for key in row}
    assert "vs_direct" in vs and ("vs_nginx" in vs) is nginx_present
    row = next(r for r in result["comparisons"]["sizes"] if r["route"] == "relay")
    assert set(LATENCY_KEYS) <= set(row["vs_direct"]["added_ms"])
    assert {"frames_per_s", "bytes_per_s", "proxy_cpu_us_per_frame", "p50", "p99.9"} <= set(row["vs_direct"]["ratio"])
    assert [s["route"] for s in result["stall"]] == ["relay"]
    assert all(s["rss_max_bytes"] > 0 and s["sent"] > 0 for s in result["stall"])
    assert {t["name"] for t in result["targets"]} >= {"p99 <= 1.5x direct p99", "3 sessions: frames lost"}


def test_smoke_image_inputs_on_the_local_routes(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """JPEG inputs of 16 and 256 KB, closed loop and at 30/s, on direct, relay and nginx, with their targets."""
    result = json.loads((smoke[1] / "bench.json").read_text())
    routes = {"direct", "relay"} | ({"nginx"} if find_nginx() else set())
    got = {(p["route"], p["image_bytes"], p["rate"]) for p in result["images"]}
    assert got == {(r, s, rate) for r in routes for s in (16384, 262144) for rate in (None, 30.0)}
    for point in result["images"]:
        _check_point(point)
        # The input carried the image (JPEG of at most the size asked for, at least 90 % of it) and the
        # reply was as large; the echo app reported its own time, so the round trip is split.
        assert 0.9 * point["image_bytes"] < point["input_bytes"] < point["image_bytes"] + 200
        assert point["bytes_per_s"] / point["frames_per_s"] >= point["image_bytes"]
        assert point["upstream_ms"]["inference"]["p50"] < point["latency_ms"]["p50"]
        assert point["remainder_ms"]["p50"] > 0
        assert (point["send_lag_ms"] is None) is (point["rate"] is None)  # open loop only
        assert point["lost"] == 0, point
    names = {t["name"] for t in result["targets"]}
    assert {"image 256 KB at 30/s: frames lost", "image 16 KB at 30/s: p99 <= 1.5x direct"} <= names
    assert any(row["image_bytes"] == 262144 and row["rate"] == 30.0 for row in result["comparisons"]["images"])
    assert "scheduled send time" in result["meta"]["open_loop"]


def test_smoke_fanout_times_every_viewer_of_the_relay(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """The fan-out ran on the relay for 1 and 3 viewers, who all joined before the driver and got its frames."""
    result = json.loads((smoke[1] / "bench.json").read_text())
    assert [(p["route"], p["viewers"]) for p in result["fanout"]] == [("relay", 1), ("relay", 3)]
    assert result["meta"]["fanout_rate"] > 0 and result["meta"]["fanout_frame_bytes"] == 65536
    for point in result["fanout"]:
        assert point["waiting_seen"] == point["viewers"], point["errors"]
        assert point["inputs"] > 0 and point["driver_received"] > 0 and point["viewer_received"] > 0
        assert len(point["per_viewer"]) == point["viewers"]
        assert all({"p50", "p99", "max", "received", "lost"} <= set(v) for v in point["per_viewer"])
        assert sum(v["received"] for v in point["per_viewer"]) == point["viewer_received"]
        for key in ("driver_latency_ms", "viewer_latency_ms", "last_viewer_ms"):
            assert set(LATENCY_KEYS) <= set(point[key])
            assert 0 < point[key]["p50"] <= point[key]["p99"] <= point[key]["max"]
        assert point["lost_per_viewer_max"] >= point["lost_per_viewer_mean"] >= 0
        assert point["proxy_cpu_s"] is not None and point["proxy_peak_rss_bytes"] > 0
        assert point["relay_dropped"] is not None  # read from the relay's /metrics


def test_fanout_point_pools_viewers_and_counts_each_ones_losses() -> None:
    """Viewer figures pool every viewer's samples; lost is per viewer; CPU is per input and per delivered frame."""
    viewer = {"waiting_seen": True, "errors": [], "bytes_received": 0}
    result = {
        "inputs": 4, "received": 4, "latencies_ns": [1_000_000] * 4, "elapsed_s": 1.0, "client_cpu_s": 0.1,
        "viewers": [viewer | {"latencies_ns": [2_000_000] * 4, "seqs": [1, 2, 3, 4], "received": 4},
                    viewer | {"latencies_ns": [4_000_000, 3_000_000], "seqs": [2, 4], "received": 2}],
    }
    point = make_fanout_point("relay", 65536, 20.0, result, 0.01, 1, 0.0, 0.0)
    assert point.viewers == 2 and point.viewer_received == 6
    assert point.viewer_latency_ms["max"] == 4.0 and point.viewer_latency_ms["p50"] == 2.0
    assert point.lost_per_viewer_mean == 1.0 and point.lost_per_viewer_max == 2
    assert point.last_viewer_ms["max"] == 4.0 and point.last_viewer_ms["p50"] == 3.5  # inputs 2 and 4 only
    assert point.proxy_cpu_us_per_input == pytest.approx(2500.0)
    assert point.proxy_cpu_us_per_frame == pytest.approx(1000.0)  # 4 to the driver + 6 to the viewers


def test_fanout_is_in_the_full_sweep_and_can_be_skipped() -> None:
    """The full sweep runs 1, 10, 100 viewers by default; `--fanout 0` skips the fan-out."""
    assert parse_args([]).fanout == [1, 10, 100]
    assert parse_args(["--fanout", "0"]).fanout == []
    assert parse_args(["--fanout", "2,5"]).fanout == [2, 5]


def test_smoke_png_is_a_sensible_png(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """The plot is a PNG of a readable size."""
    data = (smoke[1] / "bench.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert 400 <= width <= 4000 and 300 <= height <= 4000
    assert 10_000 < len(data) < 5_000_000


def test_missing_nginx_makes_an_unavailable_route_that_says_why() -> None:
    """Without the nginx binary the route is skipped with a reason naming the Debian package."""
    with procs.nginx("ws://127.0.0.1:9", 65536, binary="/nonexistent/nginx") as route:
        assert not route.available
        assert route.reason == "/nonexistent/nginx not found (Debian: apt-get install nginx); route skipped"


def test_generated_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    """The generated config is valid nginx, with buffering off and a buffer of at least one frame."""
    assert find_nginx() is not None, "Debian's nginx is needed (scripts/test installs it)"
    config = NginxConfig(tmp_path, 8080, 8081, buffer_bytes=524_352)
    path = config.write()
    text = path.read_text()
    assert "proxy_buffering off;" in text and "proxy_buffer_size 513k;" in text
    check = subprocess.run([str(find_nginx()), "-t", "-p", str(tmp_path), "-c", str(path)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


def test_percentiles_interpolate_like_numpy() -> None:
    """Percentiles interpolate between closest ranks; the summary is in milliseconds."""
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 99.9) == pytest.approx(3.997)
    summary = latency_summary([1_000_000, 2_000_000, 3_000_000])
    assert summary["p50"] == 2.0 and summary["max"] == 3.0 and summary["mean"] == 2.0


def test_plot_survives_a_fanout_that_measured_no_cpu(smoke: tuple[subprocess.CompletedProcess[str], Path],
                                                      tmp_path: Path) -> None:
    """A short fan-out can measure 0 CPU ticks on every point: the plot keeps a linear axis, not a crash."""
    from realtime_bench.report import write_plot

    result = json.loads((smoke[1] / "bench.json").read_text())
    for point in result["fanout"]:
        point["proxy_cpu_us_per_frame"] = point["proxy_cpu_us_per_input"] = 0.0
    write_plot(result, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_median_point_takes_every_figure_s_median_and_keeps_its_range() -> None:
    """Three runs: each number is the median, `spread` its min–max, errors pooled; ratios get a per-run range."""
    from realtime_bench.spread import median_point, ratio_spreads
    from realtime_bench.stats import comparisons, make_point

    def point(route: str, run: int, ms: list[int], cpu: float) -> Any:
        ns = [m * 1_000_000 for m in ms]
        result = {"sent": len(ms), "received": len(ms), "elapsed_s": 1.0, "latencies_ns": ns,
                  "bytes_received": 100 * len(ms), "client_cpu_s": 0.1, "errors": [f"{route}{run}"],
                  "timings_ns": {"inference": [500_000] * len(ms)}, "remainder_ns": [n - 500_000 for n in ns]}
        p = make_point(route, 4096, 1, None, result, cpu, 1000, 0.0)
        p.run = run
        return p

    relay = [point("relay", 0, [2, 2, 2], 0.3), point("relay", 1, [4, 4, 4], 0.1), point("relay", 2, [3, 3, 3], 0.2)]
    direct = [point("direct", r, [1, 1, 1], 0.1) for r in range(3)]
    med = median_point(relay)
    assert med.runs == 3 and med.latency_ms["p50"] == 3.0 and med.spread["latency_ms.p50"] == [2.0, 4.0]
    assert med.proxy_cpu_s == pytest.approx(0.2) and med.spread["proxy_cpu_s"] == pytest.approx([0.1, 0.3])
    assert med.upstream_ms["inference"]["p50"] == 0.5 and med.spread["remainder_ms.p50"] == [1.5, 3.5]
    assert med.errors == ["relay0", "relay1", "relay2"]
    rows = comparisons([med, median_point(direct)], "relay", ["direct"])
    ratio_spreads(rows, relay + direct)
    assert rows[0]["vs_direct"]["ratio"]["p50"] == 3.0
    assert rows[0]["vs_direct"]["ratio_spread"]["p50"] == [2.0, 4.0]


def test_repeat_interleaves_every_point_and_rotates_the_routes() -> None:
    """Each point runs on every route before the next point; each run starts one route later."""
    from realtime_bench.sweep import interleave

    plan = interleave(iter([("sizes", [("a", 1), ("b", 1), ("c", 1)]), ("sizes", [("a", 2), ("b", 2), ("c", 2)])]), 3)
    assert [(run, route, spec) for _, run, route, spec in plan] == [
        (0, "a", 1), (0, "b", 1), (0, "c", 1), (1, "b", 1), (1, "c", 1), (1, "a", 1), (2, "c", 1), (2, "a", 1),
        (2, "b", 1), (0, "a", 2), (0, "b", 2), (0, "c", 2), (1, "b", 2), (1, "c", 2), (1, "a", 2), (2, "c", 2),
        (2, "a", 2), (2, "b", 2)]
    assert parse_args([]).repeat == 3


def test_open_loop_counts_from_the_scheduled_send() -> None:
    """The client stalls 300 ms: inputs due meanwhile leave late and count the wait (no coordinated omission)."""
    import asyncio
    import time

    from websockets.asyncio.server import serve

    from realtime_bench.load import LoadSpec, Recorder, Session, connect

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(msgpack.packb({"seq": msgpack.unpackb(message)["seq"]}))

    async def stall_client() -> None:
        await asyncio.sleep(0.1)
        time.sleep(0.3)  # blocks the client's event loop, as a GC pause or a busy machine does

    async def run() -> Recorder:
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            spec = LoadSpec(url=f"ws://127.0.0.1:{port}", rate=50.0, duration_s=0.6, drain_s=2.0, frame_bytes=16)
            ws = await connect(spec.url, {})
            rec = Recorder()
            start = time.perf_counter()
            await asyncio.gather(Session(ws, spec).open_loop(rec, start, start + spec.duration_s), stall_client())
            await ws.close()
            return rec

    rec = asyncio.run(run())
    assert rec.received == rec.sent >= 25
    waits = sorted(ns / 1e6 for ns in rec.latencies_ns)
    lags = sorted(ns / 1e6 for ns in rec.send_lag_ns)
    # Inputs due every 20 ms during the 300 ms stall all left at its end: each counts from its own due time.
    assert waits[-1] >= 250 and sum(w > 100 for w in waits) >= 8, waits
    assert lags[-1] >= 250 and sum(lag > 100 for lag in lags) >= 8, lags


def test_readme_benchmark_commands_parse() -> None:
    """Every `realtime-bench` command in README's Benchmark section is one the CLI accepts."""
    import shlex

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Benchmark\n", 1)[1].split("\n## ", 1)[0].replace("\\\n", " ")
    commands = [line.split("#", 1)[0] for line in section.splitlines() if line.startswith(".venv/bin/realtime-bench")]
    assert len(commands) >= 8
    for command in commands:
        args = parse_args(shlex.split(command.replace('"$RELAY_API_KEY"', "k"))[1:])
        assert args.repeat == 3 or "--repeat" in command
