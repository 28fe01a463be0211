"""The relay-only install: this repository's wheel in a fresh venv, without fal's SDK or Pillow.

It is what production runs in front of fal's cloud (or any upstream at RELAY_UPSTREAM_URL): the
test builds the wheel as pip would for README's first command (with no setuptools warnings from the
project's packaging), installs it alone into a new venv (pip's cache and the local indexes keep it
quick), and starts its `realtime-server` against a fake upstream. Asked for the embedded app, the
same install says what to install.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import websockets

from realtime_server import tickets
from realtime_server.cli import free_port

from .conftest import SECRET
from .upstreams import fault_upstream

ROOT = Path(__file__).resolve().parent.parent
STEP_TIMEOUT = 300  # one pip step on a loaded machine, cache warm


def _run(*command: str | Path, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=STEP_TIMEOUT,
                          check=False, **options)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def relay_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A venv holding the relay-only install; yields its bin directory and the wheel build's log."""
    base = tmp_path_factory.mktemp("relay-only")
    # A copy of what the wheel is built from, so no build/ left in the checkout feeds a later build;
    # the copy keeps realtime_server/static a link to ../static, as in the checkout.
    source = base / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source / "pyproject.toml")
    for folder in ("realtime_server", "static"):
        shutil.copytree(ROOT / folder, source / folder, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", base / "wheel", source)
    assert built.returncode == 0, built.stderr[-3000:]
    created = _run(sys.executable, "-m", "venv", base / "venv")
    assert created.returncode == 0, created.stderr
    bin_dir = base / "venv" / "bin"
    (wheel,) = (base / "wheel").glob("fal_realtime_relay-*.whl")
    installed = _run(bin_dir / "pip", "install", "-q", wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]
    # README's first command installs the checkout editable: build that too (into a venv of its own).
    editable_venv = base / "editable"
    created = _run(sys.executable, "-m", "venv", "--without-pip", editable_venv)
    assert created.returncode == 0, created.stderr
    editable = _run(sys.executable, "-m", "pip", "--python", editable_venv / "bin" / "python", "install",
                    "--no-deps", "-v", "-e", source)
    assert editable.returncode == 0, editable.stderr[-3000:]
    yield bin_dir, built.stdout + built.stderr + editable.stdout + editable.stderr


def _module_graph(base: str, entry: str) -> set[str]:
    """Every ES module `entry` imports, directly or not, fetched from the installed relay (each must be served)."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        with urllib.request.urlopen(base + path, timeout=5) as response:
            source = response.read().decode()
        folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        for target in re.findall(r'\bfrom\s*"(\.[^"]+)"', source):  # import ... from / export ... from
            todo.append(posixpath.normpath(folder + target))
    return seen


def test_the_wheel_builds_without_packaging_warnings(relay_only: tuple[Path, str]) -> None:
    """No setuptools deprecation, configuration or editable-mode warning comes from pyproject.toml (the
    license is an SPDX string, every data directory is a listed package, the layout is plain)."""
    _, log = relay_only
    warnings = [line for line in log.splitlines() if re.search(r"Warning\b|!!$|deprecated", line)]
    assert warnings == []


def test_relay_only_install_has_no_fal_sdk(relay_only: tuple[Path, str]) -> None:
    """The production install brings the relay's own dependencies and neither fal's SDK nor Pillow."""
    bin_dir, _ = relay_only
    probe = _run(bin_dir / "python", "-c", "import importlib.util as u; print([m for m in "
                 "('fal', 'PIL', 'grpc', 'fastapi', 'starlette', 'uvicorn', 'websockets') if u.find_spec(m)])")
    assert probe.stdout.strip() == "['starlette', 'uvicorn', 'websockets']", probe.stderr
    benchmark = _run(bin_dir / "python", "-c", "import importlib.util as u; "
                     "print([m for m in ('realtime_bench', 'realtime_server.bench') if u.find_spec(m)])")
    assert benchmark.stdout.strip() == "[]", "the benchmark is its own distribution (bench/), not in the relay's wheel"
    assert not (bin_dir / "realtime-bench").exists()
    metadata = _run(bin_dir / "python", "-c", "from importlib.metadata import metadata; "
                    "print(metadata('fal-realtime-relay')['License-Expression'])")
    assert metadata.stdout.strip() == "MIT"


async def test_relay_only_install_relays_a_fake_upstream(relay_only: tuple[Path, str]) -> None:
    """`realtime-server` from the relay-only venv, RELAY_UPSTREAM_URL at a fake upstream: it serves the
    browser client and the favicon from the installed package and relays frames both ways."""
    bin_dir, _ = relay_only
    port = free_port()
    async with fault_upstream() as upstream:
        env = {"PATH": os.environ["PATH"], "PORT": str(port), "RELAY_UPSTREAM_URL": upstream,
               "RELAY_ALLOWED_APPS": "fault/echo", "RELAY_SHARED_SECRET": SECRET, "RELAY_LOG_LEVEL": "warning"}
        server = await asyncio.create_subprocess_exec(bin_dir / "realtime-server", env=env,
                                                      stderr=asyncio.subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert server.returncode is None, (await server.stderr.read()).decode()  # type: ignore[union-attr]
                try:
                    health = await asyncio.to_thread(urllib.request.urlopen, base + "/health", timeout=1)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the relay-only server did not start"
                    await asyncio.sleep(0.1)
            assert health.status == 200
            client = await asyncio.to_thread(urllib.request.urlopen, base + "/static/fal_realtime.js", timeout=5)
            assert client.status == 200 and b"export { RealtimeClient } from" in client.read()
            served = await asyncio.to_thread(_module_graph, base + "/static/", "fal_live_canvas.js")
            assert {
                "fal_realtime.js", "fal_connection.js", "fal_handover.js", "fal_live_canvas_attributes.js",
                "vendor/msgpack/index.mjs", "vendor/msgpack/utils/utf8.mjs",
            } <= served
            icon = await asyncio.to_thread(urllib.request.urlopen, base + "/favicon.ico", timeout=5)
            assert icon.headers["content-type"] == "image/x-icon" and icon.read()[:4] == b"\0\0\1\0"
            ticket = tickets.mint(SECRET, sub="1", apps=["fault/echo"], issuer="tests")
            async with websockets.connect(f"ws://127.0.0.1:{port}/fault/echo/realtime?fal_jwt_token={ticket}") as ws:
                await ws.send(msgpack.packb({"seq": 7, "size": 32}))
                async with asyncio.timeout(10):
                    frame = msgpack.unpackb(await ws.recv())
            assert frame == {"echo": 7, "pad": bytes(32)}
        finally:
            server.terminate()
            async with asyncio.timeout(15):
                await server.wait()


def test_relay_only_install_says_what_to_install_for_the_embedded_app(relay_only: tuple[Path, str]) -> None:
    """No FAL_KEY and no RELAY_UPSTREAM_URL means the embedded app, which this install lacks: it exits at
    once, naming the extra to install."""
    bin_dir, _ = relay_only
    env = {"PATH": os.environ["PATH"], "PORT": str(free_port()), "RELAY_SHARED_SECRET": SECRET}
    started = time.monotonic()
    result = _run(bin_dir / "realtime-server", env=env)
    assert result.returncode == 1 and time.monotonic() - started < 20
    assert result.stderr.strip() == (
        "realtime-server: the embedded app (local/preview, served when neither FAL_KEY nor RELAY_UPSTREAM_URL is "
        "set) needs fal's SDK and Pillow, not installed here. Install them with pip install "
        "'fal-realtime-relay[embedded]' (in a checkout: pip install -e '.[embedded]'), or set FAL_KEY to use "
        "fal's cloud, or RELAY_UPSTREAM_URL to use any upstream with fal's paths."
    )
