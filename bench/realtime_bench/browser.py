"""`--mode browser`: the `<fal-live-canvas>` widget in Chromium, from an input to the pixels it causes.

A tiny page on the relay's own origin (served by Playwright from memory; the widget's module and
the WebSocket are the relay's own) holds one widget. Each input is a new `seed` attribute, as a
page sets it; the next one goes once the frame answering it is on screen (closed loop). The widget
is used only through its documented interface (attributes, the `frame` event and its `input`,
`latencyMs` and `timings`); to split the time, the page's WebSocket is wrapped (a subclass of the
browser's own) to note when each input leaves and each frame arrives. Per frame:

- input to pixels: from setting the attribute to the first task after the next animation frame
  that follows the widget's `frame` event (the canvas was drawn before the event; that frame paints it);
- send delay: attribute to `WebSocket.send` (the widget's throttle and encoding);
- round trip: send to the frame's arrival, of which `upstream` is what the app reported in
  `timings` and `network + relay` the rest;
- decode + draw: arrival to the `frame` event (msgpack, `createImageBitmap`, `drawImage`);
- paint: the `frame` event to the pixels.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import secrets
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any

from rich.console import Console

from realtime_server import tickets

from . import procs
from .compare import endpoints
from .progress import progress_bar
from .record import Record, stop_on_signals
from .spread import medians
from .stats import latency_summary

APP = "local/preview"
PAGE_PATH = "/__realtime_bench__"
FRAME_TIMEOUT_MS = 10_000
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 # The page is served from memory on the relay's origin; Chromium would class it as public and
                 # refuse its WebSocket to a loopback relay (Local Network Access).
                 "--disable-features=LocalNetworkAccessChecks"]
# Before any page script: the browser's WebSocket, subclassed to note each send and each binary arrival.
WEBSOCKET_PROBE = """
window.__bench = { sends: [], arrivals: [] };
window.WebSocket = class extends window.WebSocket {
    constructor(...args) {
        super(...args);
        // Added before the client's own onmessage, so it runs first: the arrival time, not after decoding.
        this.addEventListener("message", (event) => {
            if (typeof event.data !== "string") window.__bench.arrivals.push(performance.now());
        });
    }
    send(data) {
        window.__bench.sends.push(performance.now());
        return super.send(data);
    }
};
"""

# Runs in the page: `count` inputs (after `warmup`), each waiting for its frame and the paint after it.
MEASURE = """
async ({count, warmup, deadlineMs, timeoutMs}) => {
    const el = document.querySelector("fal-live-canvas");
    const firstAfter = (list, t) => list.find((x) => x >= t);
    const paint = () => new Promise(
        (resolve) => requestAnimationFrame(() => setTimeout(() => resolve(performance.now()), 0)));
    const samples = [], errors = [];
    el.addEventListener("error", (event) => errors.push(`${event.detail.code}: ${event.detail.reason}`));
    const end = performance.now() + deadlineMs;
    for (let i = 0; i < warmup + count && performance.now() < end; i++) {
        const seed = 1000 + i;
        const frame = new Promise((resolve) => {
            const timer = setTimeout(() => resolve(null), timeoutMs);
            el.addEventListener("frame", function on(event) {
                if (event.detail.input && event.detail.input.seed === seed) {
                    clearTimeout(timer);
                    el.removeEventListener("frame", on);
                    const { timings, latencyMs } = event.detail;
                    resolve({ at: performance.now(), timings, latencyMs });
                }
            });
        });
        const t0 = performance.now();
        el.setAttribute("seed", String(seed));
        const got = await frame;
        if (got === null) {
            errors.push(`no frame for seed ${seed} within ${timeoutMs} ms (state ${el.state})`);
            break;
        }
        const pixels = await paint();
        if (i < warmup) continue;
        const sent = firstAfter(window.__bench.sends, t0);
        const arrived = sent === undefined ? undefined : firstAfter(window.__bench.arrivals, sent);
        const upstream = got.timings && typeof got.timings.inference === "number" ? got.timings.inference * 1000 : null;
        const roundTrip = arrived === undefined ? got.latencyMs : arrived - sent;
        samples.push({
            input_to_pixels_ms: pixels - t0, send_delay_ms: sent === undefined ? null : sent - t0,
            round_trip_ms: roundTrip, upstream_ms: upstream,
            network_ms: upstream === null ? null : roundTrip - upstream,
            decode_draw_ms: arrived === undefined ? null : got.at - arrived, paint_ms: pixels - got.at,
        });
    }
    return { samples, errors };
}
"""


@dataclass
class BrowserPoint:
    """One run of the widget in Chromium: each part of input-to-pixels as percentiles (ms)."""

    route: str
    frames: int
    duration_s: float
    input_to_pixels_ms: dict[str, float]
    send_delay_ms: dict[str, float]
    round_trip_ms: dict[str, float]
    upstream_ms: dict[str, float]  # what the app reported in `timings.inference`
    network_ms: dict[str, float]  # round trip less the upstream's time: network and relay
    decode_draw_ms: dict[str, float]
    paint_ms: dict[str, float]
    client_cpu_s: float = 0.0  # not read for a browser: kept so the report's client check applies alike
    errors: list[str] = field(default_factory=list)
    samples: list[dict[str, float | None]] = field(default_factory=list)  # every frame's parts, ms
    run: int = 0
    runs: int = 1
    spread: dict[str, list[float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def browser_point(route: str, answer: dict[str, Any], elapsed: float, run: int) -> BrowserPoint:
    samples = answer["samples"]

    def part(name: str) -> dict[str, float]:
        return latency_summary([round(s[name] * 1e6) for s in samples if s[name] is not None])

    return BrowserPoint(
        route, len(samples), elapsed, input_to_pixels_ms=part("input_to_pixels_ms"),
        send_delay_ms=part("send_delay_ms"), round_trip_ms=part("round_trip_ms"), upstream_ms=part("upstream_ms"),
        network_ms=part("network_ms"), decode_draw_ms=part("decode_draw_ms"), paint_ms=part("paint_ms"),
        errors=list(answer["errors"])[:20], run=run, samples=samples,
    )


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise ValueError("--mode browser needs Debian's chromium: apt-get install chromium")
    return path


def _page(app: str, prompt: str, ticket: str | None, ticket_url: str | None) -> str:
    credentials = f'ticket="{escape(ticket)}"' if ticket else f'ticket-url="{escape(ticket_url or "")}"'
    return f"""<!doctype html><meta charset="utf-8"><title>realtime-bench</title>
<script type="module" src="/static/fal_live_canvas.js"></script>
<fal-live-canvas app="{escape(app)}" {credentials} prompt="{escape(prompt)}" seed="999" width="512" height="512">
</fal-live-canvas>"""


@dataclass(frozen=True)
class Widget:
    """One relay the widget is measured on: its name in the tables, its origin, and the page (fresh per run)."""

    name: str
    origin: str
    page: Callable[[], str]


async def _measure(widgets: list[tuple[int, Widget]], args: argparse.Namespace, record: Record,
                   step: Callable[[str], None]) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            for run, widget in widgets:
                step(f"browser: {widget.name} widget, input to pixels" + (f" (run {run + 1}/{args.repeat})"
                                                                           if args.repeat > 1 else ""))
                page = await browser.new_page(viewport={"width": 640, "height": 640})
                await page.add_init_script(WEBSOCKET_PROBE)
                html = widget.page()
                await page.route(widget.origin + PAGE_PATH,
                                 lambda route: route.fulfill(body=html, content_type="text/html"))
                await page.goto(widget.origin + PAGE_PATH)
                await page.wait_for_function("document.querySelector('fal-live-canvas').state === 'open'",
                                             timeout=30_000)
                loop = asyncio.get_running_loop()
                started = loop.time()
                answer = await page.evaluate(MEASURE, {
                    "count": args.max_frames, "warmup": args.warmup, "deadlineMs": args.duration * 1000,
                    "timeoutMs": FRAME_TIMEOUT_MS,
                })
                record.add("browser", browser_point(widget.name, answer, loop.time() - started, run))
                await page.close()
        finally:
            await browser.close()


def _remote_widgets(args: argparse.Namespace, prompt: str) -> list[Widget]:
    """`--target` (and `--compare`): relays that hand the page a ticket, or take one given."""
    widgets = []
    for ep in endpoints(args):
        if not (ep.ticket or ep.ticket_url):
            raise ValueError(f"--mode browser needs a ticket or a ticket URL for {ep.name}: a page cannot send a key")
        origin = ep.base_url.replace("ws", "http", 1).rstrip("/")
        widgets.append(Widget(ep.name, origin, functools.partial(_page, ep.app, prompt, ep.ticket, ep.ticket_url)))
    return widgets


def run_browser(args: argparse.Namespace, console: Console, record: Record) -> dict[str, Any]:
    """The widget on the local relay (in front of `local/preview`), or on `--target`'s (and `--compare`'s) relay."""
    prompt = "a lighthouse at dusk, long exposure"
    with ExitStack() as stack:
        if args.target:
            widgets = _remote_widgets(args, prompt)
        else:
            upstream_url, _ = stack.enter_context(procs.upstream())
            relay = stack.enter_context(procs.relay(upstream_url, apps=APP, log_path=args.relay_log))
            assert relay.base_url is not None and relay.secret is not None
            secret = relay.secret

            def page() -> str:  # a fresh ticket for every page: a ticket lives minutes, a sweep may not
                ticket = tickets.mint(secret, sub="bench-browser-" + secrets.token_hex(4), apps=[APP],
                                      issuer="realtime-bench", lifetime=tickets.MAX_LIFETIME)
                return _page(APP, prompt, ticket, None)

            widgets = [Widget("relay", relay.base_url.replace("ws://", "http://", 1), page)]
        record.meta["routes"] = {w.name: {"available": True, "reason": "", "url": w.origin,
                                          "app": args.app or APP} for w in widgets}
        record.meta["browser"] = "Debian's Chromium via Playwright, headless, one <fal-live-canvas>, closed loop"
        # Each run takes every widget in turn, the order rotating by one per run, as the local sweep does.
        plan = [(run, widgets[(run + i) % len(widgets)]) for run in range(args.repeat) for i in range(len(widgets))]
        try:
            with stop_on_signals(), progress_bar(console, len(plan)) as step:
                asyncio.run(_measure(plan, args, record, step))
        except Exception as exc:  # Ctrl+C, a ticket refused, the browser gone: keep what was measured, say why
            record.stop(exc)
    points = medians(record.runs.get("browser", []), lambda p: p.route)
    meta = record.meta
    return {"meta": meta | {"partial": False}, "routes": meta["routes"], "browser": [p.to_json() for p in points],
            "comparisons": {}, "targets": [], "runs": record.raw()}
