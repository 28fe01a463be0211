"""The browser side as an npm package: `npm pack static/` gives a tarball that a React 19 app built
with Vite installs, type-checks with `tsc --noEmit` (the package's declarations, strict), builds and
runs in Chromium against the real relay, the page's own backend minting the tickets."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from realtime_server.cli import free_port

from .browser import chromium
from .conftest import RunningRelay, running

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = Path(__file__).resolve().parent / "npm_example"
NPM_TIMEOUT = 600  # npm ci on a fresh machine fetches about 25 packages
WAIT_MS = 20_000
PACKED = {
    "package.json", "fal_realtime.js", "fal_realtime.d.ts", "fal_inputs.js", "fal_inputs.d.ts", "fal_status.js",
    "fal_status.d.ts", "fal_live_canvas.js", "fal_live_canvas.d.ts",
}
# Misuses the declarations must refuse: a bad fit, a state that is not one, a wrong option type.
WRONG = """
import { RealtimeClient } from "fal-realtime-browser";
import type { State } from "fal-realtime-browser";
export const wrongFit = <fal-live-canvas app="local/preview" fit="stretch" />;
export const wrongState: State = "live";
export const wrongOption = new RealtimeClient({ throttleMs: "16" });
"""


def _npm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=cwd, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tarball, and the example app with it installed: {tarball, app, tsc, build}."""
    base = tmp_path_factory.mktemp("npm")
    packed = _npm("pack", str(ROOT / "static"), "--pack-destination", str(base), "--json", cwd=base)
    assert packed.returncode == 0, packed.stderr
    tarball = base / json.loads(packed.stdout)[0]["filename"]
    app = base / "app"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    for step in (("ci", "--no-audit", "--no-fund"), ("install", "--no-save", "--no-audit", "--no-fund", str(tarball))):
        done = _npm(*step, cwd=app)
        assert done.returncode == 0, f"npm {step[0]}: {done.stderr[-3000:]}"
    typecheck, build = _npm("run", "typecheck", cwd=app), _npm("run", "build", cwd=app)
    return {"tarball": tarball, "app": app, "tsc": typecheck, "build": build}


def test_the_package_holds_the_client_widget_types_and_msgpack(example: dict[str, Any]) -> None:
    """The tarball has each module with its declarations and the vendored msgpack, nothing of the relay's
    pages, and its version is the Python package's."""
    with tarfile.open(example["tarball"]) as tar:
        names = {name.removeprefix("package/") for name in tar.getnames()}
        manifest = json.load(tar.extractfile("package/package.json"))  # type: ignore[arg-type]
    assert PACKED <= names
    assert "vendor/msgpack/index.mjs" in names and "vendor/msgpack/utils/utf8.mjs" in names
    assert not {"index.html", "widget.html", "demo.js", "demo.css", "favicon.ico"} & names
    assert manifest["version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert set(manifest["exports"]) == {".", "./live-canvas", "./status", "./inputs", "./package.json"}
    for target in manifest["exports"].values():
        if isinstance(target, dict):
            assert target["types"].removeprefix("./") in names and target["default"].removeprefix("./") in names


def test_the_declarations_type_check_the_example(example: dict[str, Any]) -> None:
    """`tsc --noEmit` (strict) accepts the typed example: the client's options, events and errors, the
    element's attributes in JSX, its events and `HTMLElementTagNameMap`."""
    assert example["tsc"].returncode == 0, example["tsc"].stdout + example["tsc"].stderr


def test_the_declarations_refuse_misuse(example: dict[str, Any]) -> None:
    """The same check fails on a fit, a state and an option the package does not have."""
    wrong = example["app"] / "src" / "wrong.tsx"
    wrong.write_text(WRONG)
    try:
        checked = _npm("run", "typecheck", cwd=example["app"])
    finally:
        wrong.unlink()
    out = checked.stdout + checked.stderr
    assert checked.returncode != 0
    assert {line.split(")")[0] for line in out.splitlines() if line.startswith("src/wrong.tsx(")} == {
        "src/wrong.tsx(4,62", "src/wrong.tsx(5,14", "src/wrong.tsx(6,49"}, out  # each of the three lines, once
    assert '"stretch"' in out and '"live"' in out and "'State'" in out, out


def _site(dist: Path, relay: RunningRelay, port: int) -> uvicorn.Config:
    """The example's built files and its backend's ticket endpoint, on one origin."""

    async def ticket(request: Request) -> Response:
        body = await request.json()
        app = body.get("app") or "local/preview"
        return JSONResponse({"url": relay.url(app), "ticket": relay.ticket(sub="npm-user", apps=(app,)),
                             "expires_in": 300})

    site = Starlette(routes=[
        Route("/ticket", ticket, methods=["POST"]), Mount("/", StaticFiles(directory=dist, html=True)),
    ])
    return uvicorn.Config(site, host="127.0.0.1", port=port, log_config=None, lifespan="off")


async def test_the_built_app_runs_against_the_relay(example: dict[str, Any], make_relay: Callable[..., Any]) -> None:
    """Built by Vite from the tarball, the React app's <fal-live-canvas> and its own RealtimeClient both draw
    frames from the embedded app through the relay; typing a new prompt brings new frames."""
    assert example["build"].returncode == 0, example["build"].stdout + example["build"].stderr
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    async with (
        make_relay(allowed_origins=(origin,)) as relay,
        running(_site(example["app"] / "dist", relay, port)),
        chromium() as browser,
    ):
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(origin + "/")
        await page.fill("#prompt", "a lighthouse at dusk")
        await page.wait_for_function("Number(document.querySelector('#widget').dataset.frames) > 0", timeout=WAIT_MS)
        await page.wait_for_function("Number(document.querySelector('#headless').dataset.frames) > 0", timeout=WAIT_MS)
        assert await page.get_attribute("#widget", "data-state") == "open"
        assert await page.get_attribute("#headless", "data-state") == "open"
        assert await page.get_attribute("#headless", "data-size") == "512x512"
        widget_frames = int(await page.get_attribute("#widget", "data-frames") or 0)
        await page.fill("#prompt", "a lighthouse at dawn")
        await page.wait_for_function(
            f"Number(document.querySelector('#widget').dataset.frames) > {widget_frames}", timeout=WAIT_MS)
        state = await page.evaluate("document.querySelector('fal-live-canvas').state")
        assert state == "open"
        assert errors == []
