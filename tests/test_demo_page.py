"""The demo page in real Chromium: typing a prompt redraws the canvas and the HUD counts frames."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page

from .browser import ARTIFACTS, FAKE_CAMERA, chromium
from .conftest import DEV_MODE

# The page draws through <fal-live-canvas id="preview">; its canvas and HUD live in its shadow root.
SHADOW = "document.getElementById('preview').shadowRoot"
CANVAS_DATA = f"{SHADOW}.querySelector('canvas').toDataURL('image/png')"
# Some pixel of the canvas is not transparent: a frame has been drawn.
DRAWN = (f"{SHADOW}.querySelector('canvas').getContext('2d').getImageData(0, 0, 64, 64).data"
         ".some((value, index) => index % 4 === 3 && value > 0)")


async def _wait_for_new_canvas(page: Page, before: str) -> str:
    await page.wait_for_function(f"{CANVAS_DATA} !== {before!r}", timeout=15_000)
    return str(await page.evaluate(CANVAS_DATA))


async def test_demo_page_draws_frames_as_you_type(make_relay) -> None:
    """Dev mode, no configuration: the page gets a ticket, draws frames, and redraws as the prompt changes."""
    async with make_relay(**DEV_MODE) as relay, chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(relay.http + "/")
        await page.wait_for_function("customElements.get('fal-live-canvas') !== undefined", timeout=10_000)
        # Wait for a drawn frame (some pixel not transparent) rather than for a change from a blank
        # canvas read earlier: the first frame may already be there by the time the page is read.
        await page.wait_for_function(DRAWN, timeout=15_000)
        first = str(await page.evaluate(CANVAS_DATA))
        await page.wait_for_function("document.getElementById('status').textContent === 'Live'", timeout=10_000)
        await page.click("#prompt")
        await page.keyboard.press("End")
        await page.keyboard.type(" under a green sun", delay=30)
        typed = await _wait_for_new_canvas(page, first)
        assert typed != first
        await page.wait_for_function(f"Number({SHADOW}.getElementById('fps').textContent) > 0", timeout=5_000)
        p50 = await page.evaluate(f"{SHADOW}.getElementById('p50').textContent")
        assert p50 is not None and float(p50) > 0
        assert "local/preview" in (await page.text_content("#renderer") or "")
        await page.click("#keep")
        await page.wait_for_function("document.getElementById('kept').textContent.includes('kB JPEG')", timeout=5_000)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "demo_page.png"))
        assert errors == []


# Every frame the page's widget draws, with the input it answers (image bytes as a length).
RECORD_FRAMES = """
    window.seen = [];
    document.getElementById('preview').addEventListener('frame', ({ detail }) => window.seen.push({
        seed: detail.result.seed, strength: detail.input?.strength, steps: detail.input?.num_inference_steps,
        image: detail.input?.image_bytes?.length ?? 0,
    }));
"""


async def test_demo_page_controls_and_webcam_drive_the_picture(make_relay) -> None:
    """Seed, strength and steps reach the next input and its frame; the HUD shows p95; the webcam
    (Chromium's test camera) goes out as image_bytes with each input and the picture follows it."""
    async with make_relay(**DEV_MODE) as relay, chromium(*FAKE_CAMERA) as browser:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(relay.http + "/")
        await page.wait_for_function("document.getElementById('status').textContent === 'Live'", timeout=15_000)
        await page.evaluate(RECORD_FRAMES)
        await page.fill("#seed", "123")
        await page.wait_for_function("window.seen.some((f) => f.seed === 123)", timeout=15_000)
        await page.evaluate("""() => {  // disabled until the webcam is on: set as a script would
            const strength = document.getElementById('strength');
            strength.value = '0.3';
            strength.dispatchEvent(new Event('input'));
        }""")
        await page.fill("#steps", "2")
        await page.wait_for_function("window.seen.some((f) => f.strength === 0.3 && f.steps === 2)", timeout=15_000)
        await page.wait_for_function(f"Number({SHADOW}.getElementById('p95').textContent) > 0", timeout=5_000)
        assert await page.text_content("#strength-value") == "0.30"
        without_camera = str(await page.evaluate(CANVAS_DATA))
        await page.check("#webcam")
        await page.wait_for_function("window.seen.filter((f) => f.image > 0).length >= 3", timeout=15_000)
        with_camera = str(await page.evaluate(CANVAS_DATA))
        seen = await page.evaluate("window.seen")
        status = await page.text_content("#status")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "demo_page_webcam.png"))
    camera_frames = [f for f in seen if f["image"]]
    assert all((f["seed"], f["strength"], f["steps"]) == (123, 0.3, 2) for f in camera_frames)
    assert with_camera != without_camera  # same prompt, seed and strength: the camera made the difference
    assert status == "Live" and errors == []


async def test_demo_page_shows_relay_errors(make_relay) -> None:
    """A refused ticket shows the relay's own code and reason in the status line."""
    async with make_relay() as relay, chromium() as browser:
        page = await browser.new_page()
        await page.goto(relay.http + "/?ticket=forged.ticket.value")
        await page.wait_for_function("document.getElementById('status').classList.contains('error')", timeout=10_000)
        assert await page.text_content("#status") == "Stopped — UNAUTHORIZED: ticket is malformed (DecodeError)"
        # The widget's own status line, the one screen readers hear, says the same.
        widget_status = await page.evaluate(f"{SHADOW}.getElementById('status').textContent")
        assert widget_status == "Stopped — UNAUTHORIZED: ticket is malformed (DecodeError)"


async def test_demo_page_shares_a_live_session(make_relay) -> None:
    """Dev mode: "Share live session" gives a watch link whose page shows the driver's picture as it changes."""
    async with make_relay(**DEV_MODE) as relay, chromium() as browser:
        driver = await browser.new_page()
        await driver.goto(relay.http + "/")
        await driver.wait_for_function("document.getElementById('status').textContent === 'Live'", timeout=15_000)
        await driver.click("#share")
        href = await driver.get_attribute("#watch-link", "href")
        assert href is not None and href.startswith("/?watch=")
        await driver.wait_for_function("document.getElementById('status').textContent === 'Live'", timeout=15_000)
        viewer = await browser.new_page()
        await viewer.goto(relay.http + href)
        await viewer.wait_for_function(DRAWN, timeout=15_000)
        await driver.click("#prompt")
        await driver.keyboard.press("End")
        await driver.keyboard.type(" seen by a viewer", delay=20)
        await asyncio.sleep(1.0)  # let the last keystroke's frame arrive; then both pages must show it
        driver_frame = await driver.evaluate(CANVAS_DATA)
        await viewer.wait_for_function(f"{CANVAS_DATA} === {driver_frame!r}", timeout=15_000)
        assert await viewer.is_hidden("#prompt")
        (session,) = relay.app.state.sessions.sessions.values()
        assert len(session.viewers) == 1
