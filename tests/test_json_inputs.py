"""Apps and clients that speak JSON: fal's SDK app declared with `content_type`/`decode_message`, and a client
sending JSON text frames as fal-js's `encodeMessage` does. Each input is checked with a msgpack input's rules."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from realtime_server.cli import free_port

from .conftest import expect_error
from .json_app import APP

SESSION_TIMEOUT = 1.0  # the JSON app ends an idle session with x-fal-error TIMEOUT after this long


@pytest.fixture(scope="module")
def json_app_url() -> Iterator[str]:
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "tests.json_app", "--port", str(port), "--session-timeout",
                              str(SESSION_TIMEOUT)], cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert child.poll() is None, "the JSON app exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the JSON app did not start"
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}"
    finally:
        child.terminate()
        child.wait(timeout=10)


async def _answer(ws: websockets.ClientConnection) -> dict:
    async with asyncio.timeout(10):
        frame = await ws.recv()
    assert isinstance(frame, str), frame  # the app's json.dumps: a text frame
    return json.loads(frame)


async def test_an_app_declared_for_json_works_through_the_relay(make_relay, json_app_url: str) -> None:
    """JSON inputs in binary frames (what fal's SDK hands `decode_message`) reach the app; its JSON answers reach
    the client and count as answers: after the app's idle TIMEOUT nothing answered is rendered again."""
    async with make_relay(upstream_url=json_app_url, allowed_apps=(APP,)) as relay:
        async with websockets.connect(relay.url(APP, ticket=relay.ticket(apps=(APP,)))) as ws:
            await ws.send(json.dumps({"prompt": "a cat", "seed": 1}).encode())
            assert await _answer(ws) == {"prompt": "a cat", "seed": 1, "renders": 1}
            await asyncio.sleep(SESSION_TIMEOUT + 1.0)  # the app ends the idle session; the relay absorbs it
            await ws.send(json.dumps({"prompt": "a dog", "seed": 2}).encode())
            assert await _answer(ws) == {"prompt": "a dog", "seed": 2, "renders": 2}  # 1 was not sent again
            await ws.send(json.dumps({"prompt": "a cow", "seed": "three"}).encode())
            payload = await expect_error(ws, "BAD_FRAME", 1007)
        assert payload["reason"] == "field 'seed' must be an integer, got str"
        assert relay.metric("relay_upstream_opens_total") == 2
        assert relay.metric("relay_frame_latency_seconds_count") == 2


async def test_json_inputs_count_against_the_rate_and_size_limits(make_relay, json_app_url: str) -> None:
    """A JSON text frame over the size cap and a flood of JSON inputs are refused as msgpack ones are."""
    async with make_relay(upstream_url=json_app_url, allowed_apps=(APP,), max_frame_bytes=1000,
                          max_inputs_per_second=5) as relay:
        url = relay.url(APP, ticket=relay.ticket(apps=(APP,)))
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"prompt": "x" * 2000}))
            await expect_error(ws, "FRAME_TOO_LARGE", 1009)
        async with websockets.connect(url) as ws:
            for seed in range(20):
                await ws.send(json.dumps({"prompt": "flood", "seed": seed}))
            await expect_error(ws, "RATE_LIMITED", 1013)
