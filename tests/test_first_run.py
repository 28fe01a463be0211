"""What a newcomer meets first, in Debian's Chromium: bad input, controls, the HUD, a relay that is
down, a viewer page, and the states of a live session (issue 15). Real relay, real embedded app.

The widget's words all come from the browser client (`describeStatus`), so these tests read them
off the widget's status line, the demo page's status line and the client's own state.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
from playwright.async_api import Page
from websockets.asyncio.server import ServerConnection, serve

from realtime_server.cli import free_port

from . import conftest
from .browser import ARTIFACTS, FAKE_CAMERA, chromium
from .test_widget import Backend, _events, _serve, _shadow, _wait_frames, embedding
from .upstreams import FAULT_APPS, fault_upstream

WAIT_MS = 15_000
DEMO = "document.getElementById('preview')"
RECONNECT_WORDS = re.compile(r"^Reconnecting: can't reach the relay — attempt (\d+), (next try in \d+ s|trying now)$")


def _status(element: str) -> str:
    return _shadow(element, "getElementById('status').textContent")


def _hud(element: str, part: str) -> str:
    return _shadow(element, f"getElementById('{part}').textContent")


async def _sent_inputs(page: Page) -> list[dict[str, Any]]:
    """Record every input the page sends on its WebSockets, decoded (the list fills as they go)."""
    sent: list[dict[str, Any]] = []

    def on_socket(socket: Any) -> None:
        socket.on("framesent", lambda payload: isinstance(payload, bytes) and sent.append(msgpack.unpackb(payload)))

    page.on("websocket", on_socket)
    return sent


def _boxes_apart(page_boxes: dict[str, dict[str, float]]) -> bool:
    """The status bar lies wholly below the picture: no notice covers it."""
    canvas, bar = page_boxes["canvas"], page_boxes["bar"]
    return bool(bar["top"] >= canvas["bottom"] - 0.5 and canvas["height"] > 100)


BOXES = """(id) => {
    const root = document.getElementById(id).shadowRoot;
    const box = (el) => {
        const r = el.getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, height: r.height};
    };
    return {canvas: box(root.querySelector('canvas')), bar: box(root.querySelector('.bar'))};
}"""


async def test_widget_refuses_an_out_of_range_input_and_says_so_until_it_is_fixed(make_relay) -> None:
    """seed -1 and steps 0 are not sent; the status says which field and why, and keeps saying it;
    a valid value is sent at once and the message goes."""
    async with embedding(make_relay) as (relay, backend, page):
        sent = await _sent_inputs(page)
        await page.evaluate("""() => {
            add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket" prompt="a red cat" seed="3">'
                + '</fal-live-canvas>');
            window.problems = [];
            document.getElementById('a').addEventListener('inputerror', ({detail}) => window.problems.push(detail));
        }""")
        await _wait_frames(page, "a", 1)
        await page.evaluate("document.getElementById('a').seed = -1")
        await page.wait_for_function(f"{_status('a')} === 'Check the input: seed must be ≥ 0'", timeout=WAIT_MS)
        await asyncio.sleep(1.5)  # it lasts: no reconnect, no "Live" over it
        lasting = await page.evaluate(_status("a"))
        await page.evaluate("document.getElementById('a').setInput({seed: 5, num_inference_steps: 0})")
        await page.wait_for_function(f"{_status('a')} === 'Check the input: steps must be ≥ 1'", timeout=WAIT_MS)
        await page.evaluate("document.getElementById('a').setInput({num_inference_steps: 4})")
        await page.wait_for_function("window.events.a.some((e) => e.type === 'frame' && e.seed === 5)", timeout=WAIT_MS)
        await page.wait_for_function(f"{_status('a')} === 'Live'", timeout=WAIT_MS)
        problems = await page.evaluate("window.problems")
        events = await _events(page, "a")
    assert lasting == "Check the input: seed must be ≥ 0"
    assert problems == [{"field": "seed", "message": "seed must be ≥ 0"},
                        {"field": "num_inference_steps", "message": "steps must be ≥ 1"}, None]
    assert not [i for i in sent if i.get("seed") == -1 or i.get("num_inference_steps") == 0]
    assert [e["state"] for e in events if e["type"] == "statechange"] == ["connecting", "open"]
    assert not [e for e in events if e["type"] == "error"]


async def test_the_apps_own_validation_error_is_a_lasting_readable_message(make_relay) -> None:
    """width 1500 passes the client's ranges but not local/preview's (pydantic, at most 1024): the
    status says so in words and keeps saying it, with no reconnect; a valid width brings frames back."""
    async with embedding(make_relay) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                                   + ' prompt="a red cat" seed="3"></fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        await page.evaluate("document.getElementById('a').setInput({width: 1500})")
        await page.wait_for_function(f"{_status('a')} === 'Check the input: width must be ≤ 1024'", timeout=WAIT_MS)
        await asyncio.sleep(2.0)
        lasting = await page.evaluate(_status("a"))
        state = await page.evaluate("document.getElementById('a').state")
        problem = await page.evaluate("document.getElementById('a').inputError")
        before = len(await _events(page, "a"))
        await page.evaluate("document.getElementById('a').setInput({width: 384})")
        await _wait_frames(page, "a", 1, since=before)
        await page.wait_for_function(f"{_status('a')} === 'Live'", timeout=WAIT_MS)
        events = await _events(page, "a")
    assert lasting == "Check the input: width must be ≤ 1024"
    assert problem == {"field": "width", "message": "width must be ≤ 1024"}
    assert state == "idle"  # the app closed after refusing: nothing to resend until the input changes
    assert "reconnecting" not in [e["state"] for e in events if e["type"] == "statechange"]
    assert not [e for e in events if e["type"] == "error"]
    assert [e["size"] for e in events if e["type"] == "frame"][-1] == [384, 512]


async def test_demo_page_enforces_its_ranges_and_disables_what_does_nothing(make_relay) -> None:
    """Steps 50 (the field says 1-8) and seed -1 are refused with a message by the controls that stays;
    strength is disabled, saying why, until the webcam supplies an image; one app, no choice to make."""
    async with make_relay(**conftest.DEV_MODE) as relay, chromium(*FAKE_CAMERA) as browser:
        page = await browser.new_page()
        console: list[str] = []
        page.on("console", lambda message: message.type == "error" and console.append(message.text))
        sent = await _sent_inputs(page)
        await page.goto(relay.http + "/")
        await page.wait_for_function("document.getElementById('status').textContent === 'Live'", timeout=WAIT_MS)
        strength_off = await page.evaluate("""[document.getElementById('strength').disabled,
            document.getElementById('strength-hint').textContent, document.getElementById('app').disabled]""")
        await page.fill("#steps", "50")
        await page.wait_for_function("document.getElementById('problem').textContent === 'Steps must be ≤ 8'",
                                     timeout=WAIT_MS)
        await asyncio.sleep(1.5)
        steps_problem = await page.evaluate("""[document.getElementById('problem').textContent,
            document.getElementById('steps').getAttribute('aria-invalid'),
            document.getElementById('status').textContent, document.getElementById('status').className]""")
        await page.fill("#steps", "6")
        await page.fill("#seed", "-1")
        await page.wait_for_function("document.getElementById('problem').textContent === 'Seed must be ≥ 0'",
                                     timeout=WAIT_MS)
        await page.fill("#seed", "11")
        await page.wait_for_function("document.getElementById('problem').textContent === ''", timeout=WAIT_MS)
        await page.wait_for_function("document.getElementById('status').textContent === 'Live'", timeout=WAIT_MS)
        await page.check("#webcam")
        await page.wait_for_function("!document.getElementById('strength').disabled", timeout=WAIT_MS)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "first_run_demo_controls.png"))
        await page.wait_for_function("fetch('/favicon.ico').then((r) => r.ok)", timeout=WAIT_MS)
    disabled, hint, app_disabled = strength_off
    assert disabled and "turn on the webcam" in hint and app_disabled
    assert steps_problem == ["Steps must be ≤ 8", "true", "Check the input: steps must be ≤ 8", "status warn"]
    assert sent and not [i for i in sent if i.get("num_inference_steps") == 50 or i.get("seed") == -1]
    assert {i["num_inference_steps"] for i in sent} <= set(range(1, 9))
    assert any(i.get("seed") == 11 for i in sent)
    assert console == []  # no favicon 404, nothing else


async def test_hud_tells_idle_from_a_stall(make_relay) -> None:
    """After typing stops the HUD says idle and keeps the last measured rate (not 0.0 fps); an input the
    upstream never answers reads as stalled."""
    async with embedding(make_relay) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                                   + ' prompt="a kite" hud></fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        await page.evaluate("""new Promise((done) => { let n = 0; const typing = setInterval(() => {
            document.getElementById('a').seed = n; if (++n === 12) { clearInterval(typing); done(); } }, 60); })""")
        await page.wait_for_function(f"{_hud('a', 'activity')} === 'idle'", timeout=WAIT_MS)
        await asyncio.sleep(2.5)  # past the two-second window: the current rate is 0
        idle = await page.evaluate(f"[{_hud('a', 'activity')}, {_hud('a', 'fps')}, document.getElementById('a').stats]")
    activity, fps, stats = idle
    assert activity == "idle" and stats["fps"] == 0
    assert float(fps) == round(stats["lastFps"], 1) and float(fps) > 1

    async with fault_upstream() as url, \
            embedding(make_relay, upstream_url=url, allowed_apps=FAULT_APPS) as (relay, backend, page):
        await page.evaluate("""() => { add('<fal-live-canvas id="a" app="fault/echo" ticket-url="/ticket" hud>'
                                          + '</fal-live-canvas>');
                                      document.getElementById('a').setInput({seq: 1, count: 0}); }""")
        await page.wait_for_function(f"{_hud('a', 'activity')}.startsWith('stalled')", timeout=WAIT_MS)
        stalled = await page.evaluate(_hud("a", "activity"))
    assert re.fullmatch(r"stalled \d+\.\d s", stalled) and float(stalled.split()[1]) >= 1.5


@asynccontextmanager
async def _stoppable_site(local_app_url: str, monkeypatch: Any) -> AsyncIterator[tuple[Backend, Any]]:
    """The embedding site, and a relay on a fixed port that the test stops (and starts) with the
    callables it yields: `stop()`, `start()`."""
    backend = Backend(port=free_port())
    settings = conftest.Settings(shared_secret=conftest.SECRET, upstream_url=local_app_url,
                                 allowed_origins=(backend.origin,), drain_seconds=0.5)
    port = free_port()
    monkeypatch.setattr(conftest, "free_port", lambda: port)
    current: list[Any] = []

    async def start() -> None:
        manager = conftest.serve_relay(settings)
        backend.relay = await manager.__aenter__()
        current.append(manager)

    async def stop() -> None:
        await current.pop().__aexit__(None, None, None)

    await start()
    try:
        async with _serve(backend.app(), backend.port):
            yield backend, (stop, start)
    finally:
        while current:
            await stop()


async def test_relay_down_says_why_and_keeps_the_last_picture(local_app_url, monkeypatch) -> None:
    """The relay goes away: the last frame stays drawn; after a few seconds the status says the relay
    cannot be reached, which attempt this is and when the next one comes; the relay back, it goes live."""
    canvas = _shadow("a", "querySelector('canvas').toDataURL()")
    async with _stoppable_site(local_app_url, monkeypatch) as (backend, (stop, start)), chromium() as browser:
        page = await browser.new_page()
        await page.goto(backend.origin + "/")
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                                   + ' prompt="a windmill" seed="4"></fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        await asyncio.sleep(0.3)
        picture = await page.evaluate(canvas)
        await stop()
        await page.wait_for_function("document.getElementById('a').state === 'reconnecting'", timeout=WAIT_MS)
        early = await page.evaluate(_status("a"))
        await page.wait_for_function(f"{_status('a')}.startsWith('Reconnecting: ')", timeout=WAIT_MS)
        words = [await page.evaluate(_status("a"))]
        await page.wait_for_function(f"{_status('a')} !== {words[0]!r}", timeout=WAIT_MS)
        words.append(await page.evaluate(_status("a")))
        kept = await page.evaluate(canvas)
        tone = await page.evaluate(_shadow("a", "querySelector('.bar').dataset.tone"))
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "first_run_relay_down.png"))
        await start()
        await page.wait_for_function("document.getElementById('a').state === 'open'", timeout=20_000)
        await page.evaluate("document.getElementById('a').seed = 8")
        await page.wait_for_function("window.events.a.some((e) => e.type === 'frame' && e.seed === 8)",
                                     timeout=WAIT_MS)
    assert early == "Reconnecting…"  # a blip is not explained at once
    assert all(RECONNECT_WORDS.match(w) for w in words), words
    assert kept == picture
    assert tone == "warn"


async def test_viewer_page_is_marked_watch_only_and_notices_leave_the_picture_alone(make_relay) -> None:
    """The demo's watch link: a watch-only marker on the page and on the widget; when the driver leaves,
    the viewer stays, keeps the picture and says it waits for them, below the picture, not over it."""
    async with make_relay(**conftest.DEV_MODE) as relay, chromium() as browser:
        driver = await browser.new_page()
        await driver.goto(relay.http + "/")
        await driver.wait_for_function("document.getElementById('status').textContent === 'Live'", timeout=WAIT_MS)
        await driver.click("#share")
        href = await driver.get_attribute("#watch-link", "href")
        viewer = await browser.new_page()
        console: list[str] = []
        viewer.on("console", lambda message: message.type == "error" and console.append(message.text))
        await viewer.goto(relay.http + str(href))
        await viewer.wait_for_function(f"{DEMO}.shadowRoot.getElementById('status').textContent === 'Watching live'",
                                       timeout=WAIT_MS)
        await viewer.wait_for_function(f"{DEMO}.stats.lastFps >= 0 && {DEMO}.shadowRoot.querySelector('canvas')"
                                       ".getContext('2d').getImageData(0, 0, 8, 8).data[3] > 0", timeout=WAIT_MS)
        marked = await viewer.evaluate("""[document.getElementById('watching').checkVisibility(),
            document.getElementById('watching').textContent.replace(/\\s+/g, ' ').trim(),
            document.getElementById('preview').shadowRoot.getElementById('badge').checkVisibility(),
            document.getElementById('preview').shadowRoot.getElementById('badge').textContent]""")
        live_boxes = await viewer.evaluate(BOXES, "preview")
        picture = await viewer.evaluate(f"{DEMO}.shadowRoot.querySelector('canvas').toDataURL()")
        await driver.close()
        await viewer.wait_for_function(f"{DEMO}.state === 'waiting'", timeout=WAIT_MS)
        waiting = await viewer.evaluate("document.getElementById('status').textContent")
        waiting_boxes = await viewer.evaluate(BOXES, "preview")
        kept = await viewer.evaluate(f"{DEMO}.shadowRoot.querySelector('canvas').toDataURL()")
        ARTIFACTS.mkdir(exist_ok=True)
        await viewer.screenshot(path=str(ARTIFACTS / "first_run_viewer_waiting.png"))
    assert marked == [True, "Watching a live session: read-only, the person who shared the link changes the picture",
                      True, "Watch only"]
    assert waiting == "The driver left; waiting for them to draw again…"
    assert kept == picture
    assert _boxes_apart(live_boxes) and _boxes_apart(waiting_boxes)
    assert console == []


async def test_viewer_states_come_from_the_client(make_relay) -> None:
    """A viewer widget waits for a driver, goes live when one comes (session_live), waits again when it
    leaves and goes live for the next driver (a pen handed over), never with an error."""
    async with embedding(make_relay) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="v" mode="viewer" app="local/preview" ticket-url="/ticket"'
                                   + ' session="board-3"></fal-live-canvas>')""")
        await page.wait_for_function("document.getElementById('v').state === 'waiting'", timeout=WAIT_MS)
        first_words = await page.evaluate(_status("v"))
        for seed in (1, 2):
            await page.evaluate(f"""add('<fal-live-canvas id="d{seed}" app="local/preview" ticket-url="/ticket"'
                                        + ' session="board-3" prompt="a shared board" seed="{seed}">'
                                        + '</fal-live-canvas>')""")
            await page.wait_for_function(f"window.events.v.some((e) => e.type === 'frame' && e.seed === {seed})",
                                         timeout=WAIT_MS)
            await page.evaluate(f"document.getElementById('d{seed}').remove()")
            await page.wait_for_function("document.getElementById('v').state === 'waiting'", timeout=WAIT_MS)
        events = await _events(page, "v")
    assert first_words == "Waiting for the driver…"
    states = [e["state"] for e in events if e["type"] == "statechange"]
    assert states[-4:] == ["open", "waiting", "open", "waiting"] and "error" not in states
    assert not [e for e in events if e["type"] == "error"]
    assert relay.metric("relay_connections_total", outcome="accepted") == 3  # the viewer's one connection


@asynccontextmanager
async def older_relay() -> AsyncIterator[str]:
    """A relay from before session_waiting: it tells a viewer session_ended and closes with 4004."""

    async def handler(ws: ServerConnection) -> None:
        await asyncio.sleep(0.3)
        await ws.send(json.dumps({"type": "x-fal-message", "action": "session_ended", "reason": "the driver left"}))
        await ws.close(4004, "the driver left")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


async def test_an_older_relays_session_end_is_an_end_not_an_error(make_relay) -> None:
    """Close 4004 after session_ended: the widget says the session ended, fires no error, does not retry."""
    async with embedding(make_relay) as (relay, backend, page), older_relay() as old:
        await page.evaluate(f"""add('<fal-live-canvas id="v" mode="viewer" relay="{old}" app="local/preview"'
                                    + ' ticket="any" session="s"></fal-live-canvas>')""")
        await page.wait_for_function("document.getElementById('v').state === 'ended'", timeout=WAIT_MS)
        await asyncio.sleep(1.5)  # time for a retry, were there one
        words = await page.evaluate(_status("v"))
        events = await _events(page, "v")
    assert [e["state"] for e in events if e["type"] == "statechange"] == ["connecting", "open", "ended"]
    assert not [e for e in events if e["type"] == "error"]
    assert words == "The live session ended"
