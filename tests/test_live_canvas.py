"""The addon's LiveCanvas with npm's @odoo/owl in Debian's Chromium, talking to the real relay.

The page (tests/live_canvas/harness.*) is served by a tiny Starlette app on a loopback port;
the component module and template come straight from llm_fal_ai_realtime/static/src/live_canvas/,
the browser client from the relay itself (one copy), and tickets from the relay's own minting
code through an exposed function, the way Odoo's session endpoint hands them out (or refuses them).
Frames come from the embedded local/preview app, whose renderer is deterministic: the bytes of a
frame show which prompt and seed produced it. One test puts a gate in front of it instead, an
upstream that renders with the same renderer but answers only when the test says so.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import msgpack
import uvicorn
from PIL import Image
from playwright.async_api import Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from realtime_server import Settings, tickets
from realtime_server.cli import free_port
from realtime_server.local_app.renderer import RenderRequest, render_jpeg

from .browser import ARTIFACTS, chromium
from .conftest import running

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "live_canvas"
COMPONENT = ROOT / "llm_fal_ai_realtime" / "static" / "src" / "live_canvas"
OWL = HARNESS / "node_modules" / "@odoo" / "owl" / "dist" / "owl.es.js"
CLIENT_COPY = ROOT / "llm_fal_ai_realtime" / "static" / "src" / "fal_realtime"
MEDIA_TYPES = {".js": "text/javascript", ".xml": "text/xml"}
FILES = {
    "/harness.html": (HARNESS / "harness.html", "text/html"),
    "/harness.js": (HARNESS / "harness.js", "text/javascript"),
    "/owl.js": (OWL, "text/javascript"),
    "/translation.js": (HARNESS / "translation.js", "text/javascript"),
    # The component and its sub-components, modules and templates as the addon's lazy bundle holds them.
    **{f"/addon/live_canvas/{path.relative_to(COMPONENT).as_posix()}": (path, MEDIA_TYPES[path.suffix])
       for path in COMPONENT.rglob("*") if path.suffix in (".js", ".xml")},
    # The browser client as the addon bundles it, served from the page's own origin as Odoo serves it.
    **{f"/addon/fal_realtime/{path.relative_to(CLIENT_COPY).as_posix()}": (path, "text/javascript")
       for path in CLIENT_COPY.rglob("*.js")},
}
CANVAS = ".o_live_canvas"
CANVAS_DATA = "document.querySelector('.o_live_canvas_canvas').toDataURL('image/png')"
_session_ids = itertools.count(1)


async def _harness_file(request: Request) -> Response:
    file, content_type = FILES[request.url.path]
    return Response(file.read_bytes(), media_type=content_type)


async def _templates(request: Request) -> Response:
    """The component's templates, one file each, for the harness to add to its OWL app."""
    return JSONResponse(sorted(path for path in FILES
                               if path.startswith("/addon/live_canvas/") and path.endswith(".xml")))


@asynccontextmanager
async def harness_server() -> AsyncIterator[str]:
    """Serve the harness on a free loopback port (a real server: Chromium only lets loopback pages
    reach the loopback relay); yield its origin."""
    port = free_port()
    app = Starlette(routes=[Route(path, _harness_file) for path in FILES] + [Route("/templates", _templates)])
    async with running(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_config=None,
                                      lifespan="off")):
        yield f"http://127.0.0.1:{port}"


def rendered(inputs: dict[str, Any]) -> bytes:
    """The JPEG local/preview renders for the inputs LiveCanvas sends (the renderer is deterministic)."""
    return render_jpeg(RenderRequest(prompt=inputs["prompt"], seed=inputs["seed"], width=inputs["width"],
                                     height=inputs["height"], num_inference_steps=inputs["num_inference_steps"],
                                     strength=inputs["strength"]))


class Gate:
    """An upstream that renders like local/preview, but answers each input only when `release()` is called."""

    def __init__(self) -> None:
        self.url = ""
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._releases = asyncio.Semaphore(0)
        self._open = False

    def release(self) -> None:
        self._releases.release()

    def open(self) -> None:
        """Answer everything from now on, so that no handler is left waiting when the server closes."""
        self._open = True
        self._releases.release()

    async def handler(self, ws: ServerConnection) -> None:
        with suppress(ConnectionClosed):
            async for message in ws:
                inputs = msgpack.unpackb(message, raw=False)
                await self.received.put(inputs)
                if not self._open:
                    await self._releases.acquire()
                image = {"content": rendered(inputs), "width": inputs["width"], "height": inputs["height"],
                         "content_type": "image/jpeg"}
                await ws.send(msgpack.packb({"images": [image], "seed": inputs["seed"]}, use_bin_type=True))


@asynccontextmanager
async def gated_upstream() -> AsyncIterator[Gate]:
    gate = Gate()
    async with serve(gate.handler, "127.0.0.1", 0, compression=None) as server:
        gate.url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
        try:
            yield gate
        finally:
            gate.open()


class Tally:
    """What the page asked the Python side for, and the errors it threw."""

    def __init__(self) -> None:
        self.minted = 0
        self.page_errors: list[str] = []


@asynccontextmanager
async def live_canvas_page(browser: Any, relay: Any, origin: str, *, role: str = "driver", session: str | None = None,
                           secret: str | None = None, lifetime: int = 300, skew: float = 0.0,
                           prompt: str = "", refuse: str = "") -> AsyncIterator[tuple[Page, Tally]]:
    """A page with LiveCanvas mounted, and the tally of tickets it asked for; `refuse` makes the ticket
    source (Odoo's session endpoint in the addon) refuse with that message; `skew` seconds is how far
    the ticket source's clock runs ahead of the relay's."""
    assert OWL.exists(), "npm ci --prefix tests/live_canvas has not been run (scripts/test runs it)"
    page = await browser.new_page()
    tally = Tally()
    page.on("pageerror", lambda error: tally.page_errors.append(str(error)))
    session = session or f"harness-session-{next(_session_ids)}"

    def mint_ticket() -> dict[str, Any]:
        tally.minted += 1
        ticket = tickets.mint(secret or relay.settings.shared_secret, sub="7", apps=["local/preview"], issuer=origin,
                              lifetime=lifetime, session=session, role=role, now=time.time() + skew)
        return {"url": relay.url("local/preview", session=session), "ticket": ticket, "app": "local/preview",
                "role": role, "session": session, "expires_in": lifetime}

    await page.expose_function("mintTicket", mint_ticket)
    query = {"relay": relay.http, "prompt": prompt} | ({"refuse": refuse} if refuse else {})
    await page.goto(f"{origin}/harness.html?{urlencode(query)}")
    await page.wait_for_function("window.harness && window.harness.ready", timeout=15_000)
    try:
        yield page, tally
    finally:
        await page.close()


async def _state(page: Page) -> str | None:
    return await page.get_attribute(CANVAS, "data-state")


async def _wait_state(page: Page, state: str, timeout: float = 15_000) -> None:
    await page.wait_for_function(
        f"document.querySelector('{CANVAS}')?.dataset.state === {json.dumps(state)}", timeout=timeout)


async def _wait_new_canvas(page: Page, before: str, timeout: float = 15_000) -> str:
    await page.wait_for_function(f"{CANVAS_DATA} !== {json.dumps(before)}", timeout=timeout)
    return str(await page.evaluate(CANVAS_DATA))


async def test_live_canvas_draws_frames_as_you_type_and_keeps_the_frame(make_relay) -> None:
    """Typing drives the preview, frames land on the canvas with fps/latency, Keep gets a frame's bytes
    with the prompt and seed that rendered them, even while typing goes on."""
    async with harness_server() as origin, make_relay(allowed_origins=(origin,)) as relay, chromium() as browser:
        async with live_canvas_page(browser, relay, origin) as (page, tally):
            blank = str(await page.evaluate(CANVAS_DATA))
            assert await page.is_disabled(".o_live_canvas_keep"), "nothing to keep before the first frame"
            await page.click(".harness_prompt")
            await page.keyboard.type("a lighthouse at dusk", delay=20)
            await _wait_state(page, "open")
            first = await _wait_new_canvas(page, blank)
            await page.keyboard.type(" in heavy rain", delay=20)
            second = await _wait_new_canvas(page, first)
            assert second != first
            await page.wait_for_function(
                "parseFloat(document.querySelector('.o_live_canvas_fps').textContent) > 0", timeout=5_000)
            latency = await page.text_content(".o_live_canvas_latency")
            assert latency and int(latency.split()[0]) > 0
            assert "local" in (await page.text_content(".o_live_canvas_renderer") or "")
            assert await page.text_content(".o_live_canvas_status") == "Live"

            # Keep while the user goes on typing, so inputs are in flight; a JS click leaves the focus in the prompt.
            typing = asyncio.create_task(page.keyboard.type(" and a ship", delay=30))
            await _wait_new_canvas(page, second)
            await page.evaluate("document.querySelector('.o_live_canvas_keep').click()")
            await typing
            await page.wait_for_function("window.harness.kept !== null", timeout=5_000)
            kept = await page.evaluate("window.harness.kept")
            frames = await page.evaluate("window.harness.frames")
            answered = [frame["input"] for frame in frames if frame["bytes"] == kept["bytes"]]
            assert answered, "Keep must hand over the bytes of a frame the canvas drew"
            assert (kept["prompt"], kept["seed"]) == (answered[-1]["prompt"], answered[-1]["seed"])
            raw = base64.b64decode(kept["bytes"])
            assert raw == rendered(answered[-1]), "the kept prompt and seed are the ones that rendered these bytes"
            assert raw[:3] == b"\xff\xd8\xff" and kept["contentType"] == "image/jpeg"
            assert Image.open(io.BytesIO(raw)).size == (kept["width"], kept["height"])
            assert kept["prompt"].startswith("a lighthouse at dusk in heavy rain")
            assert isinstance(kept["seed"], int) and kept["app"] == "local/preview"
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "live_canvas_harness.png"))
            assert tally.page_errors == []


async def test_keep_records_the_input_that_produced_the_frame(make_relay) -> None:
    """A frame that arrives after the prompt has moved on is kept with the prompt that produced it."""
    async with gated_upstream() as gate, harness_server() as origin, \
            make_relay(upstream_url=gate.url, allowed_origins=(origin,)) as relay, chromium() as browser:
        async with live_canvas_page(browser, relay, origin) as (page, _tally):
            await page.fill(".harness_prompt", "a red kite")
            first = await asyncio.wait_for(gate.received.get(), 15)
            assert first["prompt"] == "a red kite"
            # The user types on while that input renders: the newer input waits in the client.
            await page.fill(".harness_prompt", "a red kite over a grey sea")
            await page.wait_for_function("window.harness.sent.at(-1)?.prompt === 'a red kite over a grey sea'",
                                         timeout=5_000)
            gate.release()  # the frame of "a red kite" arrives while the prompt says "... over a grey sea"
            second = await asyncio.wait_for(gate.received.get(), 15)
            assert second["prompt"] == "a red kite over a grey sea"  # sent once the frame came; never answered
            await page.wait_for_function(f"document.querySelector('{CANVAS}').dataset.frames === '1'", timeout=5_000)
            await page.click(".o_live_canvas_keep")
            await page.wait_for_function("window.harness.kept !== null", timeout=5_000)
            kept = await page.evaluate("window.harness.kept")
            assert (kept["prompt"], kept["seed"]) == ("a red kite", first["seed"])
            assert base64.b64decode(kept["bytes"]) == rendered(first)


async def test_live_canvas_says_odoo_refused_the_pass(make_relay) -> None:
    """When Odoo refuses the first ticket, the canvas says so with Odoo's reason, not as the relay's UNAUTHORIZED."""
    refusal = "This model is not allowed here: an administrator can allow it in Settings."
    async with harness_server() as origin, make_relay(allowed_origins=(origin,)) as relay, chromium() as browser:
        async with live_canvas_page(browser, relay, origin, prompt="a red fox", refuse=refusal) as (page, tally):
            await _wait_state(page, "error")
            messages = await page.evaluate("window.harness.canvasMessages")
            message = await page.text_content(".o_live_canvas_error_message")
            assert message == messages["NO_TICKET"] == "Odoo refused to give you a pass for this live preview."
            assert message != messages["UNAUTHORIZED"]
            codes = await page.evaluate(f"import('{relay.http}/static/fal_realtime.js')"
                                        ".then((client) => Object.values(client.ERROR_CODES))")
            assert len(codes) > 10 and set(codes) <= set(messages), set(codes) - set(messages)  # words for each
            assert await page.text_content(".o_live_canvas_error_reason") == f"NO_TICKET: {refusal}"
            assert await page.is_visible(".o_live_canvas_retry")
            assert tally.minted == 0 and await page.evaluate("window.harness.clients.length") == 0


async def test_live_canvas_says_odoo_refused_a_later_pass(make_relay) -> None:
    """A ticket Odoo refuses on reconnect reaches the canvas as the client's NO_TICKET, in the same words."""
    refusal = "You can no longer read this conversation."
    async with harness_server() as origin, make_relay(allowed_origins=(origin,), idle_timeout=1.0) as relay, \
            chromium() as browser:
        # 5 s tickets: any reconnect after the relay's idle close asks for a fresh one.
        async with live_canvas_page(browser, relay, origin, lifetime=5) as (page, tally):
            await page.fill(".harness_prompt", "a paper boat")
            await page.wait_for_function(f"Number(document.querySelector('{CANVAS}').dataset.frames) > 0",
                                         timeout=15_000)
            await page.evaluate(f"window.harness.refusal = {json.dumps(refusal)}")
            await _wait_state(page, "idle")  # the relay closed the idle connection
            await page.fill(".harness_prompt", "a paper boat on a pond")
            await _wait_state(page, "error")
            client_code = await page.evaluate("window.harness.clientNoTicket")
            assert await page.evaluate("window.harness.errors.at(-1)") == client_code
            messages = await page.evaluate("window.harness.canvasMessages")
            assert await page.text_content(".o_live_canvas_error_message") == messages[client_code]
            reason = await page.text_content(".o_live_canvas_error_reason") or ""
            assert reason.startswith(f"{client_code}: ") and reason.endswith(refusal), reason
            assert tally.page_errors == []


async def test_live_canvas_shows_the_relays_error_in_words(make_relay) -> None:
    """An origin the relay does not allow ends in the error state with a plain message and the relay's reason."""
    async with harness_server() as origin, make_relay(allowed_origins=("https://somewhere.else",)) as relay, \
            chromium() as browser:
        async with live_canvas_page(browser, relay, origin, prompt="a red fox") as (page, _tally):
            await _wait_state(page, "error")
            assert await page.text_content(".o_live_canvas_status") == "Stopped"
            message = await page.text_content(".o_live_canvas_error_message")
            assert message == ("The preview server does not accept connections from this Odoo address. "
                               "Ask an administrator to add it.")
            reason = await page.text_content(".o_live_canvas_error_reason")
            assert reason and reason.startswith(f"ORIGIN_NOT_ALLOWED: origin {origin} may not use this relay")
            assert await page.is_visible(".o_live_canvas_retry")


async def test_live_canvas_shows_unauthorized_for_a_foreign_ticket(make_relay) -> None:
    """A ticket signed with another secret is refused; the canvas says so and does not hammer the relay."""
    async with harness_server() as origin, make_relay(allowed_origins=(origin,)) as relay, chromium() as browser:
        async with live_canvas_page(browser, relay, origin, prompt="a red fox",
                                    secret="some-other-secret-that-is-long-enough") as (page, tally):
            await _wait_state(page, "error")
            reason = await page.text_content(".o_live_canvas_error_reason")
            assert reason == "UNAUTHORIZED: ticket signature does not match this relay's secret"
            assert "shared secret" in (await page.text_content(".o_live_canvas_error_message") or "")
            minted = tally.minted
            await page.wait_for_timeout(1500)
            assert tally.minted == minted and await _state(page) == "error", "a refused ticket is not retried"


async def test_live_canvas_points_at_the_clocks_for_a_ticket_from_the_future(make_relay) -> None:
    """A ticket stamped by a clock two minutes ahead is refused; the words name the clocks as well as the secret."""
    async with harness_server() as origin, make_relay(allowed_origins=(origin,)) as relay, chromium() as browser:
        async with live_canvas_page(browser, relay, origin, prompt="a red fox", skew=120) as (page, _tally):
            await _wait_state(page, "error")
            reason = await page.text_content(".o_live_canvas_error_reason")
            assert reason == "UNAUTHORIZED: ticket is not valid yet (iat in the future)"
            message = await page.text_content(".o_live_canvas_error_message") or ""
            assert "clocks of Odoo and the relay" in message and "shared secret" in message, message


async def test_live_canvas_renews_its_ticket_and_stays_live(make_relay) -> None:
    """With short tickets the canvas fetches fresh ones before expiry and keeps drawing."""
    async with harness_server() as origin, make_relay(allowed_origins=(origin,)) as relay, chromium() as browser:
        async with live_canvas_page(browser, relay, origin, lifetime=3) as (page, tally):
            blank = str(await page.evaluate(CANVAS_DATA))
            await page.click(".harness_prompt")
            await page.keyboard.type("a paper boat", delay=20)
            await _wait_state(page, "open")
            frame = await _wait_new_canvas(page, blank)
            # Renewals at 80% of the lifetime: two more tickets within ~5 s; allow up to 10 s under load.
            for _ in range(100):
                if tally.minted >= 3:
                    break
                await page.wait_for_timeout(100)
            assert tally.minted >= 3, f"only {tally.minted} tickets in 10 s with a 3 s lifetime"
            await page.wait_for_timeout(1000)  # past the first ticket's expiry
            await page.keyboard.type(" on a pond", delay=20)
            await _wait_new_canvas(page, frame)
            assert await _state(page) in ("open", "reconnecting")
            await _wait_state(page, "open")


async def test_viewer_watches_the_drivers_session_read_only(make_relay) -> None:
    """A viewer of the same session receives the driver's frames, has no controls or Keep, waits calmly when
    the driver leaves, and goes on watching by itself when the driver draws again."""
    async with harness_server() as origin, make_relay(allowed_origins=(origin,)) as relay, chromium() as browser:
        async with live_canvas_page(browser, relay, origin, session="shared-thread-1") as (driver, _d), \
                live_canvas_page(browser, relay, origin, role="viewer", session="shared-thread-1") as (viewer, _v):
            await _wait_state(driver, "open")
            await _wait_state(viewer, "open")
            assert await viewer.text_content(".o_live_canvas_status") == "Watching live"
            assert await viewer.query_selector(".o_live_canvas_keep") is None
            assert await viewer.query_selector(".o_live_canvas_controls") is None
            blank = str(await viewer.evaluate(CANVAS_DATA))
            await driver.click(".harness_prompt")
            await driver.keyboard.type("a hot air balloon", delay=20)
            await _wait_new_canvas(viewer, blank)
            assert int(await viewer.get_attribute(CANVAS, "data-frames") or 0) > 0
            assert await viewer.query_selector(".o_live_canvas_latency") is None, "a viewer sends no inputs to time"
            # The driver leaves (thread changed, page reloaded): the viewer waits, with no error.
            frames = int(await viewer.get_attribute(CANVAS, "data-frames") or 0)
            await driver.click(".harness_toggle")
            await _wait_state(viewer, "waiting")
            assert await viewer.query_selector(".o_live_canvas_error") is None
            assert await viewer.text_content(".o_live_canvas_waiting") == "Waiting for the pen holder to draw"
            # The driver comes back and draws: the viewer resumes within 2 s of the driver's first frame, no click.
            await driver.click(".harness_toggle")
            await driver.wait_for_function(f"Number(document.querySelector('{CANVAS}')?.dataset.frames) > 0",
                                           timeout=15_000)
            await viewer.wait_for_function(
                f"Number(document.querySelector('{CANVAS}').dataset.frames) > {frames}"
                f" && document.querySelector('{CANVAS}').dataset.state === 'open'", timeout=2_000)
            assert await viewer.text_content(".o_live_canvas_status") == "Watching live"
            assert await viewer.evaluate("window.harness.clients.length") == 1, "the viewer never reconnected"


async def test_closing_the_canvas_closes_the_connection(make_relay) -> None:
    """Unmounting LiveCanvas (thread changed) closes its client for good."""
    async with harness_server() as origin, make_relay(allowed_origins=(origin,)) as relay, chromium() as browser:
        async with live_canvas_page(browser, relay, origin, prompt="a tiny robot") as (page, tally):
            await _wait_state(page, "open")
            await page.click(".harness_toggle")
            await page.wait_for_function(f"!document.querySelector('{CANVAS}')")
            await page.wait_for_function("window.harness.clients.every((c) => c.state === 'closed')", timeout=5_000)
            minted = tally.minted
            await page.wait_for_timeout(1000)
            assert tally.minted == minted, "a closed canvas must not fetch tickets"


async def test_live_canvas_reconnects_after_the_relay_restarts(local_app_url, monkeypatch) -> None:
    """The relay goes away mid-session: the canvas says it is reconnecting, then goes live again by itself."""
    from . import conftest

    async with harness_server() as origin, chromium() as browser:
        settings = Settings(shared_secret=conftest.SECRET, upstream_url=local_app_url, allowed_origins=(origin,))
        port = free_port()
        monkeypatch.setattr(conftest, "free_port", lambda: port)
        relay_cm = conftest.serve_relay(settings)
        relay = await relay_cm.__aenter__()
        try:
            async with live_canvas_page(browser, relay, origin) as (page, tally):
                blank = str(await page.evaluate(CANVAS_DATA))
                await page.click(".harness_prompt")
                await page.keyboard.type("a windmill", delay=20)
                await _wait_state(page, "open")
                first = await _wait_new_canvas(page, blank)
                await relay_cm.__aexit__(None, None, None)
                relay_cm = None
                await _wait_state(page, "reconnecting", timeout=10_000)
                assert await page.text_content(".o_live_canvas_status") == "Reconnecting…"
                relay_cm = conftest.serve_relay(settings)
                await relay_cm.__aenter__()
                await _wait_state(page, "open", timeout=20_000)
                await page.keyboard.type(" in a storm", delay=20)
                await _wait_new_canvas(page, first)
                assert tally.page_errors == []
        finally:
            if relay_cm is not None:
                await relay_cm.__aexit__(None, None, None)


class EndingRelay:
    """A relay from before `session_waiting`, for a viewer: it ends the viewer's first connection with 4004
    (the driver left) and keeps the next one open. It checks no ticket: only the close code matters here."""

    def __init__(self, secret: str) -> None:
        self.settings = SimpleNamespace(shared_secret=secret)
        self.connections = 0
        self.port = 0

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, app: str, session: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{app}/realtime?session={session}"

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        if self.connections == 1:
            await ws.close(4004, "the live session ended")
            return
        with suppress(ConnectionClosed):
            await ws.wait_closed()


async def test_viewer_waits_on_the_clients_ended_state_not_on_a_raw_4004() -> None:
    """The canvas takes a session's end from the client's `ended` state (the client reads close 4004): it
    waits calmly and watches again with a fresh client. An error event that merely carries 4004 is an
    error like any other: the canvas no longer reads close codes itself."""
    from . import conftest

    relay = EndingRelay(conftest.SECRET)
    async with harness_server() as origin, chromium() as browser, \
            serve(relay.handler, "127.0.0.1", 0, compression=None) as server:
        relay.port = next(iter(server.sockets)).getsockname()[1]
        async with live_canvas_page(browser, relay, origin, role="viewer") as (page, tally):
            await page.wait_for_function("window.harness.clients[0]?.state === 'ended'", timeout=10_000)
            assert await _state(page) == "ended"  # the client's own name; the words say "waiting"
            assert await page.query_selector(".o_live_canvas_error") is None
            assert await page.text_content(".o_live_canvas_waiting") == "Waiting for the pen holder to draw"
            # About a second later: a fresh client, which the relay keeps open.
            await page.wait_for_function("window.harness.clients.length === 2"
                                         " && window.harness.clients[1].state === 'open'", timeout=10_000)
            await _wait_state(page, "open")
            assert relay.connections == 2
            # A raw close code on an error is not an end: the canvas shows the error and keeps this client.
            await page.evaluate("""() => {
                const error = Object.assign(new Error("x"),
                    {code: "INTERNAL_ERROR", reason: "a raw 4004", closeCode: 4004});
                window.harness.clients[1].dispatchEvent(new CustomEvent("error", {detail: error}));
            }""")
            await page.wait_for_selector(".o_live_canvas_error", timeout=5_000)
            await page.wait_for_timeout(1500)  # longer than the canvas waits before watching again
            assert await page.evaluate("window.harness.clients.length") == 2
            assert await _state(page) == "open"
            assert relay.connections == 2
            assert tally.page_errors == []
