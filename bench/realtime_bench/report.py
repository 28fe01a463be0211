"""The benchmark's outputs: a table on the terminal, a JSON file and a PNG plot.

The JSON is the record (every point, the comparisons, the targets and the machine); the table and
the plot are views of it, so they are built from the same dictionary.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .stats import BROWSER_PARTS, PERCENTILES

ROUTE_COLOURS = {"direct": "tab:green", "relay": "tab:blue", "nginx": "tab:orange", "floor": "tab:gray"}


def _size(n: int) -> str:
    if n == 0:
        return "render"  # --mode render: the reply is whatever local/preview draws
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    return f"{n / 1024:g} KB" if n >= 1024 else f"{n} B"


def _f(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _get(point: dict[str, Any], figure: str) -> float | None:
    value: Any = point
    for part in figure.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, int | float) else None


def _m(point: dict[str, Any], figure: str, digits: int = 3, scale: float = 1.0) -> str:
    """A figure as its median, with the min–max over the runs in brackets when there were several."""
    value = _get(point, figure)
    text = _f(value * scale if value is not None else None, digits)
    spread = (point.get("spread") or {}).get(figure)
    if spread and point.get("runs", 1) > 1:
        text += f" ({_f(spread[0] * scale, digits)}–{_f(spread[1] * scale, digits)})"
    return text


def _rate(rate: float | None) -> str:
    return f"{rate:g}/s" if rate else "closed"


def points_table(title: str, points: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("route", "frame", "sessions", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "frames/s",
                 "MB/s", "proxy CPU µs/frame", "proxy peak RSS MB", "client CPU %", "lost"):
        table.add_column(name, justify="left" if name == "route" else "right")
    for p in points:
        lat = p["latency_ms"]
        rss = p["proxy_peak_rss_bytes"]
        table.add_row(
            p["route"], _size(p["frame_bytes"]), str(p["sessions"]),
            _m(p, "latency_ms.p50"), _f(lat["p90"]), _m(p, "latency_ms.p99"), _f(lat["p99.9"]), _f(lat["max"]),
            _m(p, "frames_per_s", 0), _f(p["bytes_per_s"] / 1e6, 1), _m(p, "proxy_cpu_us_per_frame", 1),
            _f(rss / 1e6 if rss else None, 1), _f(100 * p["client_cpu_s"] / p["duration_s"], 0), str(p["lost"]),
        )
    return table


def images_table(title: str, points: Sequence[dict[str, Any]]) -> Table:
    """Image inputs: one row per route, image size and input rate."""
    table = Table(title=title, title_justify="left")
    for name in ("route", "image in", "rate", "p50 ms", "p90 ms", "p99 ms", "max ms", "frames/s",
                 "proxy CPU µs/frame", "send lag p99 ms", "lost"):
        table.add_column(name, justify="left" if name == "route" else "right", no_wrap=True)
    for p in points:
        lag = p.get("send_lag_ms") or {}
        table.add_row(
            p["route"], _size(p.get("input_bytes") or p["image_bytes"]), _rate(p["rate"]), _m(p, "latency_ms.p50"),
            _f(p["latency_ms"]["p90"]), _m(p, "latency_ms.p99"), _f(p["latency_ms"]["max"]), _m(p, "frames_per_s", 0),
            _m(p, "proxy_cpu_us_per_frame", 1), _f(lag.get("p99")), str(p["lost"]),
        )
    return table


def split_table(title: str, points: Sequence[dict[str, Any]]) -> Table:
    """Where the time goes: the round trip, what the upstream reported of it, and the rest."""
    table = Table(title=title, title_justify="left")
    for name in ("route", "point", "round trip p50 / p90 / p99 ms", "upstream (reported)",
                 "network + relay p50 / p90 / p99 ms"):
        table.add_column(name, justify="left" if name in ("route", "point", "upstream (reported)") else "right")
    for p in points:
        if not p.get("upstream_ms"):
            continue
        lat, rest = p["latency_ms"], p.get("remainder_ms") or {}
        reported = "; ".join(f"{key} {_f(v['p50'])} / {_f(v['p90'])} / {_f(v['p99'])}"
                             for key, v in p["upstream_ms"].items())
        image = f", {_size(p['image_bytes'])} in" if p["image_bytes"] else ""
        point = f"{_rate(p['rate'])} × {p['sessions']}{image}"
        table.add_row(p["route"], point, f"{_m(p, 'latency_ms.p50')} / {_f(lat['p90'])} / {_f(lat['p99'])}",
                      reported, f"{_f(rest.get('p50'))} / {_f(rest.get('p90'))} / {_f(rest.get('p99'))}")
    return table


def target_table(title: str, points: Sequence[dict[str, Any]]) -> Table:
    """`--target`/`--compare`: one row per endpoint and point."""
    table = Table(title=title, title_justify="left")
    for name in ("route", "rate", "image in", "sessions", "p50 ms", "p90 ms", "p99 ms", "max ms", "frames/s",
                 "sent", "lost", "errors"):
        table.add_column(name, justify="left" if name == "route" else "right")
    for p in points:
        table.add_row(p["route"], _rate(p["rate"]), _size(p["input_bytes"]) if p["image_bytes"] else "-",
                      str(p["sessions"]), _m(p, "latency_ms.p50"), _f(p["latency_ms"]["p90"]), _m(p, "latency_ms.p99"),
                      _f(p["latency_ms"]["max"]), _m(p, "frames_per_s", 1), str(p["sent"]), str(p["lost"]),
                      str(len(p["errors"])))
    return table


def ratios_table(title: str, rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("route", "point", "vs", "added p50 ms", "added p99 ms", "p50 ×", "p99 ×", "p99.9 ×",
                 "frames/s ×", "CPU/frame ×", "peak RSS ×"):
        table.add_column(name, justify="left" if name in ("route", "vs", "point") else "right")
    for row in rows:
        for key, cmp in row.items():
            if not key.startswith("vs_"):
                continue
            r, added = cmp["ratio"], cmp["added_ms"]
            spread = cmp.get("ratio_spread") or {}

            def ratio(name: str) -> str:
                text = _f(r[name], 2)
                return text + (f" ({spread[name][0]:.2f}–{spread[name][1]:.2f})" if name in spread else "")

            table.add_row(
                row["route"], _point(row), key[3:], _f(added["p50"]), _f(added["p99"]), ratio("p50"), ratio("p99"),
                _f(r["p99.9"], 2), ratio("frames_per_s"), ratio("proxy_cpu_us_per_frame"),
                _f(r["proxy_peak_rss_bytes"], 2),
            )
    return table


def _point(row: dict[str, Any]) -> str:
    """What a comparison row measured, briefly: frame size, sessions, and rate and image when set."""
    parts = [f"{_size(row['image_bytes'])} image" if row.get("image_bytes") else _size(row["frame_bytes"])]
    if row.get("rate") or row.get("image_bytes"):
        parts.append(_rate(row.get("rate")))
    parts.append(f"× {row['sessions']}")
    return " ".join(parts)


def fanout_table(title: str, points: Sequence[dict[str, Any]]) -> Table:
    """Per-viewer latency (pooled over viewers), frames lost per viewer, and the relay's cost per frame."""
    table = Table(title=title, title_justify="left")
    # Short headers: the table must fit 160 columns (piped output) without truncating a figure.
    for name in ("viewers", "inputs", "driver p50/p99 ms", "viewer p50/p99/max ms", "last viewer p50/p99",
                 "lost mean/max", "skipped", "µs/input", "µs/frame", "RSS MB (+)", "client %"):
        table.add_column(name, justify="right", no_wrap=True)
    for p in points:
        drv, lat, last = p["driver_latency_ms"], p["viewer_latency_ms"], p["last_viewer_ms"]
        rss = p["proxy_peak_rss_bytes"]
        skipped = p["relay_dropped"]
        table.add_row(
            str(p["viewers"]), str(p["inputs"]), f"{_f(drv['p50'], 2)} / {_f(drv['p99'], 2)}",
            f"{_f(lat['p50'], 2)} / {_f(lat['p99'], 2)} / {_f(lat['max'], 1)}",
            f"{_f(last['p50'], 2)} / {_f(last['p99'], 2)}",
            f"{p['lost_per_viewer_mean']:.2g} / {p['lost_per_viewer_max']}", _f(skipped, 0),
            _f(p["proxy_cpu_us_per_input"], 0), _f(p["proxy_cpu_us_per_frame"], 1),
            _rss_growth(rss, p["proxy_rss_before_bytes"]), _f(100 * p["client_cpu_s"] / p["duration_s"], 0),
        )
    return table


def _rss_growth(peak: int | None, before: int | None) -> str:
    """Peak RSS, and in brackets how far it rose above the RSS before the point's clients connected."""
    if not peak:
        return "-"
    return f"{peak / 1e6:.1f} (+{max(0, peak - before) / 1e6:.1f})" if before else f"{peak / 1e6:.1f}"


def targets_table(targets: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Targets (judged on the medians)", title_justify="left")
    for name in ("route", "target", "measured", "limit", "unit", "met"):
        table.add_column(name)
    for t in targets:
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[t["met"]]
        table.add_row(t.get("route", "relay"), t["name"], _f(t["measured"]), _f(t["limit"]), t["unit"], met)
    return table


def print_report(result: dict[str, Any], console: Console) -> None:
    meta = result["meta"]
    for name, route in result.get("routes", {}).items():
        if not route["available"]:
            console.print(f"[yellow]route {name} not measured:[/] {route['reason']}")
    phases = ("sizes", "images", "concurrency", "fanout", "target")
    measured = [p for phase in phases for p in result.get(phase) or []]
    busy = [p for p in measured if p["client_cpu_s"] > 0.8 * p["duration_s"]]
    if busy:
        console.print(f"[yellow]the load generator used over 80% of a core in {len(busy)} point(s): "
                      "those figures are bounded by the client, not the route[/]")
    runs = meta.get("repeat", 1)
    note = (f"median of {runs} interleaved runs (min–max)" if runs > 1 else "one run: no spread; use --repeat 3")
    open_loop = f" Open loop: {meta['open_loop']}." if any(p.get("rate") for p in measured) else ""
    console.print(f"Figures: {note}.{open_loop} Load average at start {meta['machine']['loadavg_at_start']}, "
                  f"at end {meta.get('loadavg_at_end', '-')}.")
    if result.get("sizes"):
        console.print(points_table("Frame sizes (closed loop, one input in flight)", result["sizes"]))
    if result.get("images"):
        console.print(images_table("Image inputs (JPEG image_bytes in, a frame as large out; closed loop and "
                                   "open loop; send lag: how late inputs left against the schedule)", result["images"]))
    if result.get("concurrency"):
        console.print(points_table(f"Concurrency (open loop, {meta['rate']:g} inputs/s per session)",
                                   result["concurrency"]))
    if result.get("target"):
        urls = ", ".join(f"{name} = {r['url']}" for name, r in result["routes"].items())
        console.print(target_table(f"Targets: {urls}", result["target"]))
    if result.get("browser"):

        console.print(browser_table(result["browser"]))
    split = [p for phase in ("sizes", "images", "target") for p in result.get(phase) or [] if p.get("upstream_ms")]
    if split:
        console.print(split_table("Where the time goes (upstream: the `timings` the app reported per frame; "
                                  "network + relay: the round trip less `inference`, or their sum)", split))
    if result.get("fanout"):
        routes = ", ".join(dict.fromkeys(p["route"] for p in result["fanout"]))
        title = (f"Fan-out on the {routes} (1 driver at {meta['fanout_rate']:g} inputs/s, "
                 f"{_size(meta['fanout_frame_bytes'])} frames; viewer: driver's send → a viewer's receipt, all "
                 "viewers' samples; last viewer: until every viewer has the frame; lost: per viewer; skipped: by "
                 "the relay for viewers that fell behind; proxy CPU per input and per delivered frame; peak RSS "
                 "(+ rise from before the clients connected))")
        console.print(fanout_table(title, result["fanout"]))
        waiting = [p for p in result["fanout"] if p["waiting_seen"] != p["viewers"]]
        if waiting:
            console.print(f"[yellow]{len(waiting)} fan-out point(s) had viewers that missed session_waiting[/]")
    rows = [row for rows in result.get("comparisons", {}).values() for row in rows]
    if rows:
        console.print(ratios_table("Ratios (subject / baseline, of the medians; per-run range in brackets; "
                                   "added = subject − baseline)", rows))
    for s in result.get("stall") or []:
        console.print(f"Stalled viewer on {s['route']}: RSS {s['rss_start_bytes'] / 1e6:.1f} MB → "
                      f"{s['rss_end_bytes'] / 1e6:.1f} MB (max {s['rss_max_bytes'] / 1e6:.1f} MB) while "
                      f"{s['sent']} inputs asked for {s['sent'] * s['frame_bytes'] / 1e6:.0f} MB it never read")
    if result.get("targets"):
        console.print(targets_table(result["targets"]))
    if meta.get("stopped"):
        console.print(f"[yellow]{meta['stopped']}[/]")


def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(_clean(result), indent=2, allow_nan=False) + "\n")


def _clean(value: Any) -> Any:
    """NaN is not JSON: make it null before writing."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_outputs(result: dict[str, Any], out_dir: Path, console: Console) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "bench.json", "png": out_dir / "bench.png", "table": out_dir / "bench.txt"}
    write_json(result, paths["json"])
    write_plot(result, paths["png"])
    with paths["table"].open("w") as fh:
        print_report(result, Console(file=fh, width=160, no_color=True))
    return paths


def write_plot(result: dict[str, Any], path: Path) -> None:
    """Latency percentiles per route and frame size (top row); throughput and p99 vs sessions (middle);
    per-viewer latency and relay CPU vs viewers of a live session (when the fan-out ran); round trip vs
    image size per input rate (when image inputs ran). A target or browser run plots its percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "sizes" not in result:
        _plot_percentiles(plt, result, path)
        return
    sizes = sorted({p["frame_bytes"] for p in result["sizes"]})
    images = result.get("images") or []
    rates = list(dict.fromkeys(p["rate"] for p in images))
    columns = max(len(sizes), 2, len(rates))
    fanout = result.get("fanout") or []
    rows = 2 + bool(fanout) + bool(images)
    fig = plt.figure(figsize=(4.2 * columns, 4 * rows), constrained_layout=True)
    grid = fig.add_gridspec(rows, columns)
    labels = [name for name, _ in PERCENTILES] + ["max"]
    for i, size in enumerate(sizes):
        ax = fig.add_subplot(grid[0, i])
        for p in (p for p in result["sizes"] if p["frame_bytes"] == size):
            values = [p["latency_ms"][k] for k in labels]
            ax.plot(labels, values, marker="o", label=p["route"], color=ROUTE_COLOURS.get(p["route"]))
        ax.set_yscale("log")
        ax.set_title(f"round trip, {_size(size)} frames, 1 session")
        ax.set_ylabel("ms")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    conc = result["concurrency"]
    routes = list(dict.fromkeys(p["route"] for p in conc))
    for col, (key, label) in enumerate((("frames_per_s", "frames/s delivered"), ("p99", "p99 round trip, ms"))):
        ax = fig.add_subplot(grid[1, col])
        for route in routes:
            pts = sorted((p for p in conc if p["route"] == route), key=lambda p: p["sessions"])
            ys = [p[key] if key == "frames_per_s" else p["latency_ms"][key] for p in pts]
            ax.plot([p["sessions"] for p in pts], ys, marker="o", label=route, color=ROUTE_COLOURS.get(route))
        ax.set_xscale("log")
        if key == "p99":
            ax.set_yscale("log")  # one saturated route would flatten the others on a linear scale
        ax.set_xlabel("concurrent sessions")
        ax.set_ylabel(label)
        if conc:
            ax.set_title(f"{label} vs sessions\n({result['meta']['rate']:g} inputs/s each, "
                         f"{_size(result['meta']['concurrency_frame_bytes'])} frames)")
            ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    if columns > 2:
        ax = fig.add_subplot(grid[1, 2])
        proxies = [r for r in dict.fromkeys(p["route"] for p in result["sizes"]) if r != "direct"]
        width = 0.8 / max(len(proxies), 1)
        for i, route in enumerate(proxies):
            cpu = {p["frame_bytes"]: p["proxy_cpu_us_per_frame"] or 0.0 for p in result["sizes"] if p["route"] == route}
            ax.bar([j + i * width for j in range(len(sizes))], [cpu.get(s, 0.0) for s in sizes], width,
                   label=route, color=ROUTE_COLOURS.get(route))
        ax.set_xticks([j + width * (len(proxies) - 1) / 2 for j in range(len(sizes))], [_size(s) for s in sizes])
        ax.set_ylabel("µs of proxy CPU per frame")
        ax.set_title("proxy CPU per frame, 1 session")
        ax.grid(True, axis="y", alpha=0.3)
        if proxies:
            ax.legend()
    if fanout:
        _plot_fanout(fig.add_subplot(grid[2, 0]), fig.add_subplot(grid[2, 1]), fanout, result["meta"])
    for col, rate in enumerate(rates):
        _plot_images(fig.add_subplot(grid[rows - 1, col]), [p for p in images if p["rate"] == rate], rate)
    fig.suptitle(f"realtime-bench {result['meta']['date']} — {result['meta']['machine']['cpu_model']}, "
                 f"{result['meta']['machine']['nproc']} cores")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_images(ax: Any, points: Sequence[dict[str, Any]], rate: float | None) -> None:
    """p50 (line) and p99 (dashed) against the image size, one colour per route, whiskers for the runs' range."""
    for route in dict.fromkeys(p["route"] for p in points):
        pts = sorted((p for p in points if p["route"] == route), key=lambda p: p["image_bytes"])
        xs = [p["image_bytes"] / 1024 for p in pts]
        for key, style in (("p50", "-"), ("p99", "--")):
            ys = [p["latency_ms"][key] for p in pts]
            spreads = [(p.get("spread") or {}).get(f"latency_ms.{key}") or [y, y] for p, y in zip(pts, ys, strict=True)]
            err = [[y - lo for y, (lo, _) in zip(ys, spreads, strict=True)],
                   [hi - y for y, (_, hi) in zip(ys, spreads, strict=True)]]
            ax.errorbar(xs, ys, yerr=err, fmt=style, marker="o", capsize=3, color=ROUTE_COLOURS.get(route),
                        label=f"{route} {key}")
    ax.set_xscale("log", base=2)
    sizes = sorted({p["image_bytes"] / 1024 for p in points})
    ax.set_xticks(sizes, [f"{s:g}" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("image input, KB (a frame as large back)")
    ax.set_ylabel("round trip, ms")
    ax.set_title(f"image inputs, {_rate(rate) if rate else 'closed loop'}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


def _plot_percentiles(plt: Any, result: dict[str, Any], path: Path) -> None:
    """A target or browser run: the round-trip percentiles of every point, one line each."""
    points = result.get("target") or result.get("browser") or []
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    labels = [name for name, _ in PERCENTILES] + ["max"]
    for p in points:
        latency = p.get("latency_ms") or p.get("input_to_pixels_ms") or {}
        image = f" {_size(p['image_bytes'])} in" if p.get("image_bytes") else ""
        name = f"{p['route']} {_rate(p.get('rate'))}{image}"
        ax.plot(labels, [latency.get(k, math.nan) for k in labels], marker="o", label=name)
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title(f"realtime-bench {result['meta']['date']}: round trip per point")
    ax.grid(True, which="both", alpha=0.3)
    if points:
        ax.legend()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _log_scale_if_positive(ax: Any, values: Sequence[float | None]) -> None:
    """A log y axis needs a positive value: a short run can measure 0 CPU ticks on every point."""
    if any(v is not None and v > 0 and math.isfinite(v) for v in values):
        ax.set_yscale("log")


def _plot_fanout(latency_ax: Any, cpu_ax: Any, points: Sequence[dict[str, Any]], meta: dict[str, Any]) -> None:
    """Per-viewer p50/p99 (pooled over viewers, with the driver's own round trip) and relay CPU vs viewers."""
    pts = sorted(points, key=lambda p: p["viewers"])
    xs = [p["viewers"] for p in pts]
    colour = ROUTE_COLOURS.get(pts[0]["route"]) if pts else None
    for key, style in (("p50", "-"), ("p99", "--")):
        latency_ax.plot(xs, [p["viewer_latency_ms"][key] for p in pts], style, marker="o", color=colour,
                        label=f"viewer {key}")
        latency_ax.plot(xs, [p["driver_latency_ms"][key] for p in pts], style, marker="x", color="tab:gray",
                        label=f"driver round trip {key}")
    latency_ax.set_xscale("log")
    latency_ax.set_yscale("log")
    latency_ax.set_xlabel("viewers of one live session")
    latency_ax.set_ylabel("ms")
    latency_ax.set_title(f"fan-out: driver's send → each viewer's receipt\n(1 driver at {meta['fanout_rate']:g} "
                         f"inputs/s, {_size(meta['fanout_frame_bytes'])} frames, relay)")
    latency_ax.grid(True, which="both", alpha=0.3)
    latency_ax.legend()
    cpu_ax.plot(xs, [p["proxy_cpu_us_per_frame"] or math.nan for p in pts], marker="o", color=colour,
                label="per delivered frame")
    cpu_ax.plot(xs, [p["proxy_cpu_us_per_input"] or math.nan for p in pts], marker="s", color=colour,
                linestyle="--", label="per driver input")
    cpu_ax.set_xscale("log")
    _log_scale_if_positive(cpu_ax, [p[k] for p in pts for k in ("proxy_cpu_us_per_frame", "proxy_cpu_us_per_input")])
    cpu_ax.set_xlabel("viewers of one live session")
    cpu_ax.set_ylabel("µs of relay CPU")
    cpu_ax.set_title("fan-out: relay CPU")
    cpu_ax.grid(True, which="both", alpha=0.3)
    cpu_ax.legend()
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 10 reads better than 10^1 on these axes
    # Minor ticks: label only 2x and 5x, so a decade's nine ticks do not overprint each other.
    sparse = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:e}"[0] in "25" else "")
    for ax in (latency_ax, cpu_ax):
        ax.set_xticks(xs)
        ax.xaxis.set_major_formatter(plain)
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(sparse)


def browser_table(points: list[dict[str, Any]]) -> Table:
    """Each part of input-to-pixels, p50 / p90 / p99 ms (p50 with the runs' min–max)."""
    table = Table(title="Browser: <fal-live-canvas> in Chromium, input to pixels (closed loop; upstream: the app's "
                        "timings.inference; network + relay: the round trip less it)", title_justify="left")
    for name in ("route", "frames", "part", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(name, justify="left" if name in ("route", "part") else "right", no_wrap=True)
    for p in points:
        for part in BROWSER_PARTS:
            lat, spread = p[part], (p.get("spread") or {}).get(f"{part}.p50")
            p50 = f"{lat.get('p50', float('nan')):.2f}" + (f" ({spread[0]:.2f}–{spread[1]:.2f})" if spread else "")
            table.add_row(p["route"], str(p["frames"]), BROWSER_PARTS[part], p50,
                          *(f"{lat.get(k, float('nan')):.2f}" for k in ("p90", "p99", "max")))
    return table
