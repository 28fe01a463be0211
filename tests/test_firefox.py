"""`<fal-live-canvas>` and the demo page in Debian's Firefox ESR, against the real relay and app.

Playwright's Python API cannot drive stock Firefox, so `tests/firefox/drive.mjs` does, with
puppeteer-core over WebDriver BiDi: each test hands it a page and a list of steps (JavaScript to
evaluate or wait for, keys to type), and it answers with each step's value as JSON, plus the page's
console errors and uncaught exceptions. The assertions are here. The pages and servers are
test_widget.py's: the embedding site's backend on one origin, the relay on another.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageStat

from .browser import ARTIFACTS
from .conftest import DEV_MODE
from .test_widget import assert_refused_app, embedding_site
from .upstreams import FAULT_APPS, fault_upstream

FIREFOX_DIR = Path(__file__).resolve().parent / "firefox"
DRIVER = FIREFOX_DIR / "drive.mjs"
TIMEOUT_S = 40  # one whole run in Firefox, launch to close
WAIT_MS = 15_000

READY = {"waitFor": "customElements.get('fal-live-canvas') !== undefined"}


def _shadow(element: str, script: str) -> str:
    return f"document.getElementById({element!r}).shadowRoot.{script}"


def _status(element: str) -> str:
    return _shadow(element, "getElementById('status').textContent")


def _frames_since(element: str, since: str | int = 0) -> str:
    return f"window.events[{element!r}].slice({since}).filter((e) => e.type === 'frame').length"


def firefox_path() -> str:
    path = shutil.which("firefox-esr") or shutil.which("firefox")
    if path is None:
        raise RuntimeError("Debian's firefox-esr is not installed: apt-get install firefox-esr (scripts/test does)")
    return path


async def in_firefox(url: str, steps: list[dict[str, Any]], expected_errors: str = "") -> list[Any]:
    """Open `url` in a fresh headless Firefox, run `steps`; each step's value. Fails on any page error but
    those that match the regular expression `expected_errors` (Firefox's own word on a refused socket)."""
    node = shutil.which("node")
    if node is None or not (FIREFOX_DIR / "node_modules" / "puppeteer-core").is_dir():
        raise RuntimeError("the Firefox driver needs node and `npm ci --prefix tests/firefox` (scripts/test does)")
    ARTIFACTS.mkdir(exist_ok=True)  # for screenshot steps
    job = {"url": url, "firefox": firefox_path(), "timeoutMs": TIMEOUT_S * 1000, "steps": steps}
    driver = await asyncio.create_subprocess_exec(
        node, str(DRIVER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT_S + 15):  # the driver keeps its own deadline; this is the backstop
            stdout, stderr = await driver.communicate(json.dumps(job).encode())
    finally:
        if driver.returncode is None:
            driver.terminate()  # the driver closes Firefox on SIGTERM
            try:
                await asyncio.wait_for(driver.wait(), 10)
            except TimeoutError:
                driver.kill()
                await driver.wait()
    lines = stdout.decode().strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    detail = f"{json.dumps(result.get('failed'), indent=1)}\nstderr: {stderr.decode()[-3000:]}"
    assert result.get("ok"), f"Firefox run failed (exit {driver.returncode}): {detail}"
    assert result["browser"].startswith("firefox/")
    errors = [e for e in result["errors"] if not (expected_errors and re.search(expected_errors, e))]
    assert errors == [], errors  # console errors and uncaught exceptions
    return list(result["results"])


def _picture(data_url: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    image.load()
    return image.convert("RGB")


def _difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two pictures' channels, 0 to 255."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


async def test_firefox_widget_goes_live_draws_frames_and_redraws_for_a_new_prompt(make_relay) -> None:
    """On a page of another origin: connecting, live, frames painted, HUD fps, "Live"; a new prompt, a new picture."""
    canvas = _shadow("a", "querySelector('canvas')")
    async with embedding_site(make_relay) as (relay, backend):
        results = await in_firefox(backend.origin + "/", [
            READY,
            {"eval": """add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                            + ' prompt="a red cat on a blue boat" seed="7" hud></fal-live-canvas>')"""},
            {"waitFor": f"{_frames_since('a')} >= 1", "timeoutMs": WAIT_MS},
            {"eval": "painted('a')"},
            {"eval": _status("a")},
            {"eval": f"window.before = window.events.a.length, window.first = {canvas}.toDataURL()"},
            {"eval": "document.getElementById('a').prompt = 'a green sun over the hills'"},
            # A frame after the change, and a picture that is not the first one (a frame for the old
            # prompt still on its way would not do).
            {"waitFor": f"{_frames_since('a', 'window.before')} >= 1 && {canvas}.toDataURL() !== window.first",
             "timeoutMs": WAIT_MS},
            {"eval": f"{canvas}.toDataURL()"},
            {"waitFor": f"Number({_shadow('a', 'getElementById(`fps`).textContent')}) > 0"
                        f" && {_shadow('a', 'getElementById(`fps`).textContent')}", "timeoutMs": WAIT_MS},
            {"eval": _status("a")},
            {"screenshot": str(ARTIFACTS / "firefox_widget.png")},
            {"eval": "document.getElementById('a').remove()"},
            {"waitFor": "window.events.a.at(-1).state === 'closed'"},
            {"eval": "window.events.a"},
        ])
    painted, status, first, second, fps, status_after, events = (results[i] for i in (3, 4, 5, 8, 9, 10, 14))
    kinds = [e["state"] if e["type"] == "statechange" else e["type"] for e in events]
    assert kinds[:3] == ["connecting", "open", "frame"]
    assert kinds[-1] == "closed" and set(kinds[2:-1]) == {"frame"} and len(kinds[2:-1]) >= 2
    frames = [e for e in events if e["type"] == "frame"]
    assert all(f["seed"] == 7 and f["size"] == [512, 512] and f["contentType"] == "image/jpeg" for f in frames)
    assert all(f["latencyMs"] > 0 for f in frames)
    assert painted > 0.99
    assert status == status_after == "Live"
    assert float(fps) > 0
    before, after = _picture(first), _picture(second)
    assert before.size == after.size == (512, 512)
    assert _difference(before, after) > 5, "the new prompt's frame looks like the old one"
    assert len(backend.minted) == 1
    assert relay.metric("relay_connections_total", outcome="accepted") == 1


async def test_firefox_widget_keep_returns_a_decodable_jpeg(make_relay) -> None:
    """`keep()` in Firefox: refuses before the first frame, then the frame's JPEG bytes, 512x512."""
    async with embedding_site(make_relay) as (relay, backend):
        early, _, kept = (await in_firefox(backend.origin + "/", [
            READY,
            {"eval": """(async () => {
                add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket" prompt="a kite">'
                    + '</fal-live-canvas>');
                try { await document.getElementById('a').keep(); return 'kept'; }
                catch (error) { return error.message; }
            })()"""},
            {"waitFor": f"{_frames_since('a')} >= 1", "timeoutMs": WAIT_MS},
            {"eval": """(async () => {
                const element = document.getElementById('a');
                const blob = await element.keep();
                const bytes = new Uint8Array(await blob.arrayBuffer());
                const bitmap = await createImageBitmap(blob);
                return {
                    type: blob.type, width: bitmap.width, height: bitmap.height,
                    asReceived: bytes.join() === element.lastBytes.join(),
                    base64: btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join('')),
                };
            })()"""},
        ]))[1:]
    assert early == "no frame to keep yet"
    assert (kept["type"], kept["width"], kept["height"], kept["asReceived"]) == ("image/jpeg", 512, 512, True)
    image = Image.open(io.BytesIO(base64.b64decode(kept["base64"])))
    image.load()
    assert (image.format, image.size) == ("JPEG", (512, 512))


async def test_firefox_widget_shows_the_relays_error_for_a_refused_app(make_relay) -> None:
    """An app the relay does not serve: the relay's APP_NOT_ALLOWED and reason, state error, no retry."""
    async with embedding_site(make_relay) as (relay, backend):
        status, events = (await in_firefox(backend.origin + "/", [
            READY,
            {"eval": """add('<fal-live-canvas id="a" app="local/other" ticket-url="/ticket"'
                            + ' prompt="a red cat"></fal-live-canvas>')"""},
            {"waitFor": "window.events.a.at(-1)?.state === 'error'", "timeoutMs": WAIT_MS},
            {"eval": _status("a")},
            {"sleep": 1500},  # long enough for a retry, were there one
            {"eval": "window.events.a"},
        ]))[3::2]
    assert_refused_app(events, status, relay)


# The demo page draws through <fal-live-canvas id="preview">; its canvas and HUD live in its shadow root.
DEMO_CANVAS = _shadow("preview", "querySelector('canvas')")
# Some pixel of the canvas is not transparent: a frame has been drawn.
DEMO_DRAWN = (f"{DEMO_CANVAS}.getContext('2d').getImageData(0, 0, 64, 64).data"
              ".some((value, index) => index % 4 === 3 && value > 0)")


async def test_firefox_demo_page_draws_frames_as_you_type(make_relay) -> None:
    """The relay's own page `/` in dev mode: it gets a ticket, draws, and redraws as a prompt is typed."""
    async with make_relay(**DEV_MODE) as relay:
        results = await in_firefox(relay.http + "/", [
            READY,
            {"waitFor": DEMO_DRAWN, "timeoutMs": WAIT_MS},
            {"waitFor": "document.getElementById('status').textContent === 'Live'", "timeoutMs": WAIT_MS},
            {"eval": f"window.first = {DEMO_CANVAS}.toDataURL()"},
            {"click": "#prompt"},
            {"press": "End"},
            {"type": " under a green sun", "delay": 30},
            {"waitFor": f"{DEMO_CANVAS}.toDataURL() !== window.first", "timeoutMs": WAIT_MS},
            {"sleep": 500},  # the last keystroke's frame
            {"eval": f"{DEMO_CANVAS}.toDataURL()"},
            {"eval": "document.getElementById('prompt').value"},
            {"waitFor": f"Number({_shadow('preview', 'getElementById(`fps`).textContent')}) > 0", "timeoutMs": 5000},
            {"eval": "document.getElementById('renderer').textContent"},
            {"click": "#keep"},
            {"waitFor": "document.getElementById('kept').textContent", "timeoutMs": 5000},
            {"screenshot": str(ARTIFACTS / "firefox_demo_page.png")},
        ])
    first, typed, prompt, renderer, kept = (results[i] for i in (3, 9, 10, 12, 14))
    assert prompt == "a red cat on a blue boat under a green sun"
    assert _difference(_picture(first), _picture(typed)) > 5, "typing did not change the picture"
    assert "local/preview" in renderer
    assert "kB JPEG" in kept
    assert relay.metric("relay_connections_total", outcome="accepted") == 1


# Issue 15, first run: the same behaviour as tests/test_first_run.py, in Firefox.
def _hud(element: str, part: str) -> str:
    return _shadow(element, f"getElementById('{part}').textContent")


def _set(control: str, value: str) -> dict[str, str]:
    """Set a demo control's value as typing would, with its input event."""
    return {"eval": f"""(() => {{ const c = document.getElementById({control!r}); c.value = {value!r};
                                  c.dispatchEvent(new Event('input')); }})()"""}


async def test_firefox_widget_refuses_bad_input_and_reads_the_apps_validation_error(make_relay) -> None:
    """seed -1 is not sent and the status says why until it is fixed; width 1500, which the app refuses,
    reads as "width must be ≤ 1024" and stays, without a reconnect or an error."""
    async with embedding_site(make_relay) as (relay, backend):
        results = await in_firefox(backend.origin + "/", [
            READY,
            {"eval": """add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                            + ' prompt="a red cat" seed="3"></fal-live-canvas>')"""},
            {"waitFor": f"{_frames_since('a')} >= 1", "timeoutMs": WAIT_MS},
            {"eval": "document.getElementById('a').seed = -1"},
            {"waitFor": f"{_status('a')} === 'Check the input: seed must be ≥ 0'", "timeoutMs": WAIT_MS},
            {"sleep": 1500},
            {"eval": _status("a")},
            {"eval": "document.getElementById('a').seed = 5"},
            {"waitFor": "window.events.a.some((e) => e.type === 'frame' && e.seed === 5)", "timeoutMs": WAIT_MS},
            {"eval": "document.getElementById('a').setInput({width: 1500})"},
            {"waitFor": f"{_status('a')} === 'Check the input: width must be ≤ 1024'", "timeoutMs": WAIT_MS},
            {"sleep": 1500},
            {"eval": f"[{_status('a')}, document.getElementById('a').state]"},
            {"eval": "window.events.a"},
        ])
    seed_words, (width_words, state), events = results[6], results[12], results[13]
    assert seed_words == "Check the input: seed must be ≥ 0"
    assert (width_words, state) == ("Check the input: width must be ≤ 1024", "idle")
    assert [e["state"] for e in events if e["type"] == "statechange"] == ["connecting", "open", "idle"]
    assert not [e for e in events if e["type"] == "error"]
    assert -1 not in [e["seed"] for e in events if e["type"] == "frame"]


async def test_firefox_demo_page_ranges_disabled_strength_and_an_idle_hud(make_relay) -> None:
    """The demo page: strength disabled without the webcam, saying why; steps 50 refused with a message
    that stays; typing stopped, the HUD says idle with the last rate, not 0.0 fps."""
    async with make_relay(**DEV_MODE) as relay:
        results = await in_firefox(relay.http + "/", [
            READY,
            {"waitFor": "document.getElementById('status').textContent === 'Live'", "timeoutMs": WAIT_MS},
            {"eval": "[document.getElementById('strength').disabled,"
                     " document.getElementById('strength-hint').textContent]"},
            _set("steps", "50"),
            {"waitFor": "document.getElementById('problem').textContent === 'Steps must be ≤ 8'",
             "timeoutMs": WAIT_MS},
            {"sleep": 1500},
            {"eval": "[document.getElementById('problem').textContent, document.getElementById('status').textContent]"},
            _set("steps", "3"),
            {"waitFor": "document.getElementById('problem').textContent === ''", "timeoutMs": WAIT_MS},
            {"eval": """new Promise((done) => { let n = 0; const typing = setInterval(() => {
                document.getElementById('seed').value = String(n);
                document.getElementById('seed').dispatchEvent(new Event('input'));
                if (++n === 12) { clearInterval(typing); done(); } }, 60); })"""},
            {"waitFor": f"{_hud('preview', 'activity')} === 'idle'", "timeoutMs": WAIT_MS},
            {"sleep": 2500},
            {"eval": f"[{_hud('preview', 'activity')}, {_hud('preview', 'fps')}]"},
            {"screenshot": str(ARTIFACTS / "firefox_first_run_demo.png")},
        ])
    (disabled, hint), problem, (activity, fps) = results[2], results[6], results[12]
    assert disabled and "turn on the webcam" in hint
    assert problem == ["Steps must be ≤ 8", "Check the input: steps must be ≤ 8"]
    assert activity == "idle" and float(fps) > 1


async def test_firefox_relay_down_says_why_and_keeps_the_last_picture(local_app_url, monkeypatch) -> None:
    """The relay stops while Firefox shows a frame: the picture stays, and after a few seconds the words say
    the relay cannot be reached, the attempt and the next try."""
    from .test_first_run import RECONNECT_WORDS, _stoppable_site

    canvas = _shadow("a", "querySelector('canvas').toDataURL()")
    async with _stoppable_site(local_app_url, monkeypatch) as (backend, (stop, start)):
        firefox = asyncio.create_task(in_firefox(backend.origin + "/", [
            READY,
            {"eval": """add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                            + ' prompt="a windmill" seed="4"></fal-live-canvas>')"""},
            {"waitFor": f"{_frames_since('a')} >= 1", "timeoutMs": WAIT_MS},
            {"sleep": 500},
            {"eval": f"window.picture = {canvas}"},
            {"waitFor": "document.getElementById('a').state === 'reconnecting'", "timeoutMs": 25_000},
            {"waitFor": f"{_status('a')}.startsWith('Reconnecting: ')", "timeoutMs": WAIT_MS},
            {"eval": f"[{_status('a')}, {canvas} === window.picture]"},
            {"screenshot": str(ARTIFACTS / "firefox_first_run_relay_down.png")},
        ], expected_errors=r"^pageerror: Firefox can.t establish a connection to the server at ws://"))
        assert backend.relay is not None
        async with asyncio.timeout(30):
            while backend.relay.metric("relay_frames_total", direction="out") < 1 and not firefox.done():
                await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # past the step that keeps the picture
        await stop()
        results = await firefox
    words, kept = results[7]
    assert RECONNECT_WORDS.match(words), words
    assert kept is True


async def test_firefox_viewer_waits_watches_and_an_older_relays_end(make_relay) -> None:
    """A viewer widget: Watch only, waiting for the driver, watching, waiting again when the driver goes
    (picture kept, words below it); an older relay's 4004 is an end, not an error."""
    from .test_first_run import older_relay

    boxes = """(() => { const root = document.getElementById('v').shadowRoot;
        const c = root.querySelector('canvas').getBoundingClientRect();
        const b = root.querySelector('.bar').getBoundingClientRect();
        return b.top >= c.bottom - 0.5 && c.height > 100; })()"""
    canvas = _shadow("v", "querySelector('canvas').toDataURL()")
    async with embedding_site(make_relay) as (relay, backend), older_relay() as old:
        results = await in_firefox(backend.origin + "/", [
            READY,
            {"eval": """add('<fal-live-canvas id="v" mode="viewer" app="local/preview" ticket-url="/ticket"'
                            + ' session="board-5"></fal-live-canvas>')"""},
            {"waitFor": "document.getElementById('v').state === 'waiting'", "timeoutMs": WAIT_MS},
            {"eval": f"[{_status('v')}, {_shadow('v', 'getElementById(`badge`).checkVisibility()')}]"},
            {"eval": """add('<fal-live-canvas id="d" app="local/preview" ticket-url="/ticket" session="board-5"'
                            + ' prompt="a shared board" seed="9"></fal-live-canvas>')"""},
            {"waitFor": f"{_frames_since('v')} >= 1", "timeoutMs": WAIT_MS},
            {"sleep": 300},
            {"eval": f"window.picture = {canvas}; {_status('v')}"},
            {"eval": "document.getElementById('d').remove()"},
            {"waitFor": "document.getElementById('v').state === 'waiting'", "timeoutMs": WAIT_MS},
            {"eval": f"[{_status('v')}, {canvas} === window.picture, {boxes}]"},
            {"eval": f"""add('<fal-live-canvas id="o" mode="viewer" relay="{old}" app="local/preview"'
                             + ' ticket="any" session="s"></fal-live-canvas>')"""},
            {"waitFor": "document.getElementById('o').state === 'ended'", "timeoutMs": WAIT_MS},
            {"sleep": 1500},
            {"eval": f"[{_status('o')}, window.events.o, window.events.v]"},
        ])
    (first, badge), watching, (waiting, kept, apart), (ended, old_events, events) = (
        results[3], results[7], results[10], results[14])
    assert (first, badge) == ("Waiting for the driver…", True)
    assert watching == "Watching live"
    assert (waiting, kept, apart) == ("The driver left; waiting for them to draw again…", True, True)
    assert [e["state"] for e in events if e["type"] == "statechange"] == [
        "connecting", "open", "waiting", "open", "waiting"]
    assert ended == "The live session ended"
    assert [e["state"] for e in old_events if e["type"] == "statechange"] == ["connecting", "open", "ended"]
    assert not [e for e in events + old_events if e["type"] == "error"]


async def test_firefox_hud_shows_a_stall(make_relay) -> None:
    """An input the upstream never answers: the HUD says stalled, with how long it has waited."""
    async with fault_upstream() as url, \
            embedding_site(make_relay, upstream_url=url, allowed_apps=FAULT_APPS) as (relay, backend):
        results = await in_firefox(backend.origin + "/", [
            READY,
            {"eval": """add('<fal-live-canvas id="a" app="fault/echo" ticket-url="/ticket" hud></fal-live-canvas>');
                        document.getElementById('a').setInput({seq: 1, count: 0})"""},
            {"waitFor": f"{_hud('a', 'activity')}.startsWith('stalled') && {_hud('a', 'activity')}",
             "timeoutMs": WAIT_MS},
        ])
    assert re.fullmatch(r"stalled \d+\.\d s", results[2]) and float(results[2].split()[1]) >= 1.5
