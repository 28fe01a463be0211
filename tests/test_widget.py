"""`<fal-live-canvas>` in Debian's Chromium, on a page of another origin, against the real relay and app.

The page's own backend (a small Starlette app here) serves the page and mints tickets at
`POST /ticket`, as a site embedding the widget would; the widget module comes from the relay.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch

import jwt
import uvicorn
from PIL import Image
from playwright.async_api import Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from realtime_server.cli import free_port

from .browser import ARTIFACTS, chromium
from .conftest import DEV_MODE, RunningRelay
from .reliability import wait_for
from .upstreams import FAULT_APPS, fault_upstream

PAGE = Path(__file__).resolve().parent / "widget_pages" / "embed.html"
README = Path(__file__).resolve().parent.parent / "README.md"
WAIT_MS = 15_000


@dataclass
class Backend:
    """The embedding site's backend: its page, and a ticket endpoint that records what it minted."""

    port: int
    relay: RunningRelay | None = None
    lifetime: int = 300
    delay: float = 0.0  # seconds the ticket endpoint takes to answer
    refuse: int = 0  # how many of the next ticket requests to refuse (503)
    asked: int = 0  # ticket requests, answered or refused
    minted: list[dict[str, Any]] = field(default_factory=list)
    server: Starlette | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        async def page(request: Request) -> Response:
            assert self.relay is not None
            return HTMLResponse(PAGE.read_text().replace("{relay}", self.relay.http))

        async def ticket(request: Request) -> Response:
            assert self.relay is not None
            body = await request.json()
            self.asked += 1
            await asyncio.sleep(self.delay)
            if self.refuse:
                self.refuse -= 1
                return JSONResponse({"error": "try again"}, status_code=503)
            app = body.get("app") or "local/preview"
            session = body.get("session")
            token = self.relay.ticket(
                sub="site-user", apps=(app,), lifetime=self.lifetime, session=session, role=body.get("role"),
            )
            claims = jwt.decode(token, options={"verify_signature": False})
            self.minted.append({"app": app, "exp": claims["exp"], "role": claims.get("role"), "at": time.time()})
            # What is left of the ticket's life: `exp` is whole seconds, so up to a second less than `lifetime`.
            expires_in = claims["exp"] - time.time()
            return JSONResponse({"url": self.relay.url(app), "ticket": token, "expires_in": expires_in})

        self.server = Starlette(routes=[Route("/", page), Route("/ticket", ticket, methods=["POST"])])
        return self.server


@asynccontextmanager
async def _serve(app: Starlette, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def embedding_site(
    make_relay: Callable[..., Any], lifetime: int = 300, ticket_delay: float = 0.0, **relay_changes: Any
) -> AsyncIterator[tuple[RunningRelay, Backend]]:
    """A relay that admits the site's origin, and the site's backend serving its page."""
    backend = Backend(port=free_port(), lifetime=lifetime, delay=ticket_delay)
    async with (
        make_relay(allowed_origins=(backend.origin,), **relay_changes) as relay,
        _serve(backend.app(), backend.port),
    ):
        backend.relay = relay
        yield relay, backend


@asynccontextmanager
async def embedding(
    make_relay: Callable[..., Any], lifetime: int = 300, ticket_delay: float = 0.0, **relay_changes: Any
) -> AsyncIterator[tuple[RunningRelay, Backend, Page]]:
    """`embedding_site`, with the site's page open in Chromium."""
    async with (
        embedding_site(make_relay, lifetime, ticket_delay, **relay_changes) as (relay, backend),
        chromium() as browser,
    ):
        page = await browser.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        await page.goto(backend.origin + "/")
        await page.wait_for_function("customElements.get('fal-live-canvas') !== undefined", timeout=WAIT_MS)
        yield relay, backend, page
        assert page_errors == []


async def _events(page: Page, element: str) -> list[dict[str, Any]]:
    return list(await page.evaluate(f"window.events[{element!r}]"))


async def _wait_frames(page: Page, element: str, count: int, since: int = 0) -> None:
    """Wait until `element` has fired `count` frame events after its first `since` events."""
    await page.wait_for_function(
        f"window.events[{element!r}].slice({since}).filter((e) => e.type === 'frame').length >= {count}",
        timeout=WAIT_MS,
    )


def _shadow(element: str, script: str) -> str:
    return f"document.getElementById({element!r}).shadowRoot.{script}"


def assert_refused_app(events: list[dict[str, Any]], status: str | None, relay: RunningRelay) -> None:
    """What a widget for `local/other`, which the relay does not serve, must have shown and fired."""
    # The relay accepts the socket to say why it refuses, so a brief "open" may come before the error.
    sequence = [(e["type"], e.get("state") or e.get("code")) for e in events if e.get("state") != "open"]
    assert sequence == [("statechange", "connecting"), ("error", "APP_NOT_ALLOWED"), ("statechange", "error")]
    error = next(e for e in events if e["type"] == "error")
    assert error["reason"] == "app local/other is not served by this relay"
    assert status == "Stopped — APP_NOT_ALLOWED: app local/other is not served by this relay"
    assert relay.metric("relay_connections_total", outcome="APP_NOT_ALLOWED") == 1


async def test_widget_draws_frames_and_fires_events_in_order(make_relay) -> None:
    """Two lines of HTML: the widget connects, goes live, draws frames, shows its HUD, and closes when removed."""
    async with embedding(make_relay) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                                   + ' prompt="a red cat on a blue boat" seed="7" hud></fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        assert await page.evaluate("painted('a')") > 0.99
        assert await page.evaluate(_shadow("a", "getElementById('status').textContent")) == "Live"
        assert await page.evaluate(_shadow("a", "getElementById('status').getAttribute('role')")) == "status"
        await page.evaluate("document.getElementById('a').prompt = 'a green sun'")
        await page.wait_for_function("window.events.a.some((e) => e.inputPrompt === 'a green sun')", timeout=WAIT_MS)
        fps = _shadow("a", "getElementById('fps').textContent")
        await page.wait_for_function(f"Number({fps}) > 0", timeout=WAIT_MS)
        assert float(await page.evaluate(_shadow("a", "getElementById('p50').textContent"))) > 0
        # Page CSS stays out of the widget, and the widget's CSS stays out of the page.
        canvas = _shadow("a", "querySelector(`canvas`)")
        assert await page.evaluate(f"getComputedStyle({canvas}).borderTopWidth") == "0px"
        assert await page.evaluate("getComputedStyle(document.getElementById('probe')).display") == "inline"
        await page.evaluate("document.getElementById('a').remove()")
        await page.wait_for_function("window.events.a.at(-1).state === 'closed'", timeout=WAIT_MS)
        events = await _events(page, "a")
    kinds = [e["state"] if e["type"] == "statechange" else e["type"] for e in events]
    assert kinds[:3] == ["connecting", "open", "frame"]
    assert kinds[-1] == "closed"
    assert set(kinds[2:-1]) == {"frame"} and len(kinds[2:-1]) >= 2
    frames = [e for e in events if e["type"] == "frame"]
    assert all(f["seed"] == 7 and f["size"] == [512, 512] and f["contentType"] == "image/jpeg" for f in frames)
    assert all(f["latencyMs"] > 0 and f["timings"]["inference"] > 0 for f in frames)
    assert {f["inputPrompt"] for f in frames} == {"a red cat on a blue boat", "a green sun"}
    changes = [e for e in events if e["type"] == "statechange"]
    assert [e["previous"] for e in changes[1:]] == [e["state"] for e in changes[:-1]]
    assert len(backend.minted) == 1
    assert relay.metric("relay_connections_total", outcome="accepted") == 1


async def test_widget_renews_its_ticket_across_an_expiry(make_relay) -> None:
    """Two-second tickets, sessions cut at 2.5 s: it moves to fresh tickets before the relay cuts either, and frames
    keep coming without a reconnect showing."""
    async with embedding(make_relay, lifetime=2, ticket_leeway=0, max_session_seconds=2.5) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                                   + ' prompt="a lighthouse" seed="1"></fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        first_expiry_ms = backend.minted[0]["exp"] * 1000
        # Keep typing: a new seed every 150 ms, until well past the first ticket's expiry.
        await page.evaluate("window.typing = setInterval(() => document.getElementById('a').seed += 1, 150)")
        await page.wait_for_function(
            f"window.events.a.some((e) => e.type === 'frame' && e.at > {first_expiry_ms} + 3000)", timeout=WAIT_MS,
        )
        await page.evaluate("clearInterval(window.typing)")
        events = await _events(page, "a")
    frames = [e["at"] for e in events if e["type"] == "frame"]
    assert max(b - a for a, b in zip(frames, frames[1:])) < 2000, "frames stopped coming"
    states = [e["state"] for e in events if e["type"] == "statechange"]
    assert states == ["connecting", "open"]
    assert [e for e in events if e["type"] == "error"] == []
    assert relay.metric("relay_connections_total", outcome="accepted") >= 3  # moved over at each renewal
    # With 2 s tickets and no leeway the relay may end an old socket (TICKET_EXPIRED) before its replacement has
    # had a frame; the client then adopts the replacement at once, so the page sees neither error nor reconnect.
    assert len(backend.minted) >= 2 and backend.minted[-1]["at"] * 1000 > first_expiry_ms


async def test_widget_renews_its_ticket_before_expiry_while_live(make_relay) -> None:
    """A three-second ticket is renewed at 80 % of its life on the open connection, not at the next reconnect, and
    the connection moves to it (a second socket replaces the first) without a state change."""
    async with embedding(make_relay, lifetime=3) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                                   + ' prompt="a lighthouse"></fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        async with asyncio.timeout(WAIT_MS / 1000):
            while len(backend.minted) < 2:
                await asyncio.sleep(0.05)
        await wait_for(lambda: relay.metric("relay_connections_total", outcome="accepted") == 2, what="the handover")
        await _wait_frames(page, "a", 1)
        events = await _events(page, "a")
    first, second = backend.minted[:2]
    assert second["at"] < first["exp"]
    assert [e["state"] for e in events if e["type"] == "statechange"] == ["connecting", "open"]


async def test_widget_retries_a_refused_renewal(make_relay) -> None:
    """The backend refuses the renewal at 80 % of a four-second ticket: the widget asks again soon and has
    a fresh ticket before the first expires, without disturbing the open connection."""
    async with embedding(make_relay, lifetime=4) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                                   + ' prompt="a lighthouse"></fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        backend.refuse = 1
        async with asyncio.timeout(WAIT_MS / 1000):
            while len(backend.minted) < 2:
                await asyncio.sleep(0.05)
        events = await _events(page, "a")
    first, second = backend.minted[:2]
    assert backend.refuse == 0 and second["at"] < first["exp"]
    assert [e["state"] for e in events if e["type"] == "statechange"] == ["connecting", "open"]
    assert not [e for e in events if e["type"] == "error"]


async def test_widget_removed_during_a_refused_renewal_asks_no_more(make_relay) -> None:
    """The renewal is out and will be refused when the widget goes: it is not retried."""
    async with embedding(make_relay, lifetime=3) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket"'
                                   + ' prompt="a lighthouse"></fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        backend.refuse, backend.delay = 100, 0.5
        async with asyncio.timeout(WAIT_MS / 1000):
            while backend.asked < 2:
                await asyncio.sleep(0.02)
        await page.evaluate("document.getElementById('a').remove()")
        await asyncio.sleep(3.0)  # ten retry periods of a three-second ticket
    assert backend.asked == 2


async def test_widget_stops_asking_for_tickets_once_removed_or_refused(make_relay) -> None:
    """Removed while its ticket request is in flight, or refused by the relay: no more ticket requests."""
    async with embedding(make_relay, lifetime=2, ticket_delay=0.4) as (relay, backend, page):
        await page.evaluate("""() => {
            add('<fal-live-canvas id="gone" app="local/preview" ticket-url="/ticket" prompt="x"></fal-live-canvas>');
            setTimeout(() => document.getElementById('gone').remove(), 100);
            add('<fal-live-canvas id="refused" app="local/other" ticket-url="/ticket" prompt="x"></fal-live-canvas>');
        }""")
        await page.wait_for_function("window.events.refused.at(-1)?.state === 'error'", timeout=WAIT_MS)
        await asyncio.sleep(4.0)  # two renewal periods of a two-second ticket
        gone = await _events(page, "gone")
    assert [e["state"] for e in gone if e["type"] == "statechange"] == ["connecting", "closed"]
    assert sorted(m["app"] for m in backend.minted) == ["local/other", "local/preview"]
    assert relay.metric("relay_connections_total", outcome="accepted") == 0


async def test_widget_shows_the_relays_error_for_a_refused_app(make_relay) -> None:
    """An app the relay does not serve: error event with the relay's code and reason, then state error, no retry."""
    async with embedding(make_relay) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/other" ticket-url="/ticket"'
                                   + ' prompt="a red cat"></fal-live-canvas>')""")
        await page.wait_for_function("window.events.a.at(-1)?.state === 'error'", timeout=WAIT_MS)
        status = await page.evaluate(_shadow("a", "getElementById('status').textContent"))
        await asyncio.sleep(1.5)  # long enough for a retry, were there one
        events = await _events(page, "a")
    assert_refused_app(events, status, relay)


async def test_keep_returns_a_decodable_jpeg(make_relay) -> None:
    """`keep()` refuses before the first frame, then gives the current frame's JPEG bytes as received."""
    async with embedding(make_relay) as (relay, backend, page):
        early = await page.evaluate("""async () => {
            add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket" prompt="a kite"></fal-live-canvas>');
            try { await document.getElementById('a').keep(); return 'kept'; } catch (error) { return error.message; }
        }""")
        await _wait_frames(page, "a", 1)
        kept = await page.evaluate("""async () => {
            const element = document.getElementById('a');
            const blob = await element.keep();
            const bytes = new Uint8Array(await blob.arrayBuffer());
            const bitmap = await createImageBitmap(blob);
            return {
                type: blob.type, width: bitmap.width, asReceived: bytes.join() === element.lastBytes.join(),
                base64: btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join('')),
            };
        }""")
    assert early == "no frame to keep yet"
    assert (kept["type"], kept["width"], kept["asReceived"]) == ("image/jpeg", 512, True)
    image = Image.open(io.BytesIO(base64.b64decode(kept["base64"])))
    image.load()
    assert (image.format, image.size) == ("JPEG", (512, 512))


async def test_keep_turns_a_png_frame_into_a_jpeg(make_relay) -> None:
    """An app that sends PNG frames: `keep()` still gives a JPEG, of the picture drawn."""
    async with fault_upstream() as url, \
            embedding(make_relay, upstream_url=url, allowed_apps=FAULT_APPS) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="fault/png" ticket-url="/ticket" prompt="x">'
                                   + '</fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        kept = await page.evaluate("""async () => {
            const blob = await document.getElementById('a').keep();
            const bytes = new Uint8Array(await blob.arrayBuffer());
            return {type: blob.type, base64: btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''))};
        }""")
        events = await _events(page, "a")
    assert kept["type"] == "image/jpeg"
    assert [e["contentType"] for e in events if e["type"] == "frame"][0] == "image/png"
    image = Image.open(io.BytesIO(base64.b64decode(kept["base64"])))
    assert (image.format, image.size) == ("JPEG", (64, 48))
    left, right = image.convert("RGB").getpixel((8, 24)), image.convert("RGB").getpixel((56, 24))
    assert left[0] > 200 > left[2] and right[2] > 200 > right[0], (left, right)


async def test_size_fit_and_accessible_names(make_relay) -> None:
    """`width`/`height`/`fit` size the picture and place the frame, with the status bar below it; `label`
    names the canvas; the status line is a polite live region and the HUD is hidden from screen readers."""
    async with embedding(make_relay) as (relay, backend, page):
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket" prompt="x"'
                                   + ' width="400" height="200" fit="cover" label="Preview of x" hud>'
                                   + '</fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        looks = await page.evaluate("""() => {
            const element = document.getElementById('a'), root = element.shadowRoot;
            const canvas = root.querySelector('canvas'), box = canvas.getBoundingClientRect();
            const bar = root.querySelector('.bar').getBoundingClientRect();
            return {box: [box.width, box.height], fit: getComputedStyle(canvas).objectFit,
                    barBelow: bar.top >= box.bottom && element.getBoundingClientRect().bottom === bar.bottom,
                    label: canvas.getAttribute('aria-label'), role: canvas.getAttribute('role'),
                    live: root.getElementById('status').getAttribute('aria-live'),
                    hud: root.querySelector('.hud').getAttribute('aria-hidden')};
        }""")
        await page.evaluate("""() => { const a = document.getElementById('a'); a.setAttribute('fit', 'contain');
                                       a.setAttribute('width', '256'); }""")
        resized = await page.evaluate("""() => [document.getElementById('a').getBoundingClientRect().width,
            getComputedStyle(document.getElementById('a').shadowRoot.querySelector('canvas')).objectFit]""")
    assert looks == {"box": [400, 200], "fit": "cover", "label": "Preview of x", "role": "img", "live": "polite",
                     "hud": "true", "barBelow": True}
    assert resized == [256, "contain"]


async def test_two_widgets_on_one_page_do_not_interfere(make_relay) -> None:
    """Each widget has its own connection, inputs, canvas and state; changing or removing one leaves the other."""
    async with embedding(make_relay) as (relay, backend, page):
        ticket = relay.ticket(sub="second-user")
        await page.evaluate(f"""() => {{
            add('<fal-live-canvas id="a" app="local/preview" ticket-url="/ticket" prompt="red roofs" seed="1">'
                + '</fal-live-canvas>');
            add('<fal-live-canvas id="b" relay="{relay.http}" app="local/preview" ticket="{ticket}"'
                + ' prompt="blue sea" seed="2"></fal-live-canvas>');
        }}""")
        await _wait_frames(page, "a", 1)
        await _wait_frames(page, "b", 1)
        canvas_b = _shadow("b", "querySelector('canvas').toDataURL()")
        b_before, b_events = await page.evaluate(canvas_b), len(await _events(page, "b"))
        assert b_before != await page.evaluate(_shadow("a", "querySelector('canvas').toDataURL()"))
        a_events = len(await _events(page, "a"))
        await page.evaluate("document.getElementById('a').prompt = 'green hills'")
        await _wait_frames(page, "a", 1, since=a_events)
        await asyncio.sleep(0.3)
        assert await page.evaluate(canvas_b) == b_before
        assert len(await _events(page, "b")) == b_events
        await page.evaluate("document.getElementById('a').remove()")
        await page.wait_for_function("window.events.a.at(-1).state === 'closed'", timeout=WAIT_MS)
        await page.evaluate("document.getElementById('b').prompt = 'a blue sea at night'")
        await _wait_frames(page, "b", 1, since=b_events)
        assert await page.evaluate("document.getElementById('b').state") == "open"
        assert await page.evaluate(canvas_b) != b_before
        events = {element: await _events(page, element) for element in ("a", "b")}
    assert {e["seed"] for e in events["a"] if e["type"] == "frame"} == {1}
    assert {e["seed"] for e in events["b"] if e["type"] == "frame"} == {2}
    assert [e["state"] for e in events["b"] if e["type"] == "statechange"] == ["connecting", "open"]
    assert not [e for e in events["a"] + events["b"] if e["type"] == "error"]
    assert len(backend.minted) == 1  # b used its own ticket attribute
    assert relay.metric("relay_connections_total", outcome="accepted") == 2


async def test_viewer_widget_watches_and_never_sends(make_relay) -> None:
    """`mode="viewer"`: it waits for the driver, draws the driver's frames, never sends, and waits again,
    still connected, when the driver goes."""
    async with embedding(make_relay) as (relay, backend, page):
        sockets: list[str] = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        viewer_status = _shadow("viewer", "getElementById('status').textContent")
        await page.evaluate("""add('<fal-live-canvas id="viewer" mode="viewer" app="local/preview"'
                                   + ' ticket-url="/ticket" session="thread-9"'
                                   + ' prompt="let me drive"></fal-live-canvas>')""")
        await page.wait_for_function(f"{viewer_status} === 'Waiting for the driver…'", timeout=WAIT_MS)
        await page.evaluate("""add('<fal-live-canvas id="driver" app="local/preview" ticket-url="/ticket"'
                                   + ' session="thread-9" prompt="a shared picture" seed="5"></fal-live-canvas>')""")
        await _wait_frames(page, "viewer", 1)
        assert await page.evaluate(viewer_status) == "Watching live"
        await page.evaluate("document.getElementById('viewer').seed = 99")
        await page.evaluate("document.getElementById('driver').seed = 6")
        await page.wait_for_function("window.events.viewer.some((e) => e.seed === 6)", timeout=WAIT_MS)
        await asyncio.sleep(1.0)  # time for a refusal to arrive, had the viewer sent anything
        assert await page.evaluate("document.getElementById('viewer').viewer") is True
        await page.evaluate("document.getElementById('driver').remove()")
        await page.wait_for_function("window.events.viewer.at(-1).state === 'waiting'", timeout=WAIT_MS)
        assert await page.evaluate(viewer_status) == "The driver left; waiting for them to draw again…"
        events = {element: await _events(page, element) for element in ("driver", "viewer")}
    assert [e["seed"] for e in events["viewer"] if e["type"] == "frame"] == [5, 6]  # the driver's, never its own 99
    assert [e["state"] for e in events["viewer"] if e["type"] == "statechange"] == [
        "connecting", "open", "waiting", "open", "waiting"]
    assert not [e for e in events["driver"] + events["viewer"] if e["type"] == "error"]
    assert [m["role"] for m in backend.minted] == ["viewer", "driver"]
    assert len(sockets) == 2 and all("?session=thread-9&fal_jwt_token=" in url for url in sockets)  # for routing
    assert relay.metric("relay_errors_total", code="VIEWER_READ_ONLY") == 0


def _readme_example(relay_url: str, secret: str) -> dict[str, Any]:
    """Run the Python block of README's "Embedding the live canvas" section; return its globals."""
    section = README.read_text().split("\n## Embedding the live canvas\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "README's embedding section has no Python block"
    example: dict[str, Any] = {"__name__": "readme_example"}
    with patch.dict(os.environ, {"RELAY_URL": relay_url, "RELAY_SHARED_SECRET": secret}):
        exec(compile(block.group(1), "README.md", "exec"), example)
    return example


async def test_readme_ticket_endpoint_serves_the_widget(make_relay) -> None:
    """README's ticket endpoint, as written, gets a widget live; it refuses strangers and other apps."""
    async with embedding(make_relay) as (relay, backend, page):
        example = _readme_example(relay.base, relay.settings.shared_secret or "")
        example["current_user_id"] = lambda request: "42"  # the part README leaves to the site
        example["APPS"].add("local/preview")
        assert backend.server is not None
        backend.server.router.routes.extend(example["app"].routes)
        await page.evaluate("""add('<fal-live-canvas id="a" app="local/preview" ticket-url="/fal/ticket"'
                                   + ' prompt="from the README"></fal-live-canvas>')""")
        await _wait_frames(page, "a", 1)
        refused = await page.evaluate("""async () => {
            const ask = (app) => fetch('/fal/ticket', {method: 'POST', body: JSON.stringify({app})});
            return [(await ask('local/other')).status, (await ask('local/preview')).status];
        }""")
        example["current_user_id"] = lambda request: None
        stranger = await page.evaluate(
            "fetch('/fal/ticket', {method: 'POST', body: JSON.stringify({app: 'local/preview'})}).then((r) => r.status)"
        )
    assert refused == [403, 200] and stranger == 403
    assert backend.minted == []  # every ticket came from the README's endpoint


async def test_readme_ticket_endpoint_runs_a_live_session(make_relay) -> None:
    """README's endpoint puts `session` and `role` in tickets: the driver it allows drives, a viewer watches,
    and asking to drive a session one may not drive gets a viewer ticket."""
    async with embedding(make_relay) as (relay, backend, page):
        example = _readme_example(relay.base, relay.settings.shared_secret or "")
        example["current_user_id"] = lambda request: "42"
        example["may_drive"] = lambda user_id, session: session == "board-1"
        example["APPS"].add("local/preview")
        assert backend.server is not None
        backend.server.router.routes.extend(example["app"].routes)
        await page.evaluate("""() => {
            add('<fal-live-canvas id="driver" app="local/preview" ticket-url="/fal/ticket" session="board-1"'
                + ' prompt="a shared board" seed="3"></fal-live-canvas>');
            add('<fal-live-canvas id="viewer" app="local/preview" ticket-url="/fal/ticket" session="board-1"'
                + ' mode="viewer"></fal-live-canvas>');
            add('<fal-live-canvas id="hopeful" app="local/preview" ticket-url="/fal/ticket" session="board-2"'
                + ' prompt="let me drive"></fal-live-canvas>');
        }""")
        await _wait_frames(page, "viewer", 1)
        waiting = _shadow("hopeful", "getElementById('status').textContent")
        await page.wait_for_function(f"{waiting} === 'Waiting for the driver…'", timeout=WAIT_MS)
        viewers = await page.evaluate("['driver', 'viewer', 'hopeful'].map((id) => document.getElementById(id).viewer)")
        events = await _events(page, "viewer")
    assert viewers == [False, True, True]
    assert {e["seed"] for e in events if e["type"] == "frame"} == {3}
    assert relay.metric("relay_errors_total", code="VIEWER_READ_ONLY") == 0


async def test_widget_docs_page_runs_its_example(make_relay) -> None:
    """`/widget` on a dev-mode relay: its live example draws frames; its Python example is README's, verbatim."""
    async with make_relay(**DEV_MODE) as relay, chromium() as browser:
        page = await browser.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        response = await page.goto(relay.http + "/widget")
        assert response is not None and response.status == 200
        await page.wait_for_function("document.getElementById('example').state === 'open'", timeout=WAIT_MS)
        await page.wait_for_function("document.getElementById('example-log').textContent.includes('frame #1')",
                                     timeout=WAIT_MS)
        python = await page.text_content("#python-example")
        snippet = await page.text_content("pre code")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "widget_page.png"), full_page=True)
    readme = README.read_text().split("\n## Embedding the live canvas\n", 1)[1]
    assert python is not None and python.strip() in readme
    assert snippet is not None and f'src="{relay.http}/static/fal_live_canvas.js"' in snippet
    assert page_errors == []
