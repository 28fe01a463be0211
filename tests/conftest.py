"""Real servers on free loopback ports: the embedded fal app, relays, and misbehaving upstreams."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import pytest
import uvicorn
import websockets

from realtime_server import Settings, create_app, tickets
from realtime_server.cli import free_port, local_app
from realtime_server.serving import uvicorn_config

SECRET = "test-shared-secret-that-is-long-enough-for-hs256"
LOCAL_SESSION_TIMEOUT = 1.5
DEV_MODE = {"shared_secret": None, "api_keys": ()}  # `make_relay(**DEV_MODE)`: no credential of any kind


@pytest.fixture(scope="session")
def local_app_url() -> Iterator[str]:
    """The embedded local/preview fal app, served by fal's SDK in a child process."""
    with local_app(session_timeout=LOCAL_SESSION_TIMEOUT) as url:
        yield url


@dataclasses.dataclass
class RunningRelay:
    settings: Settings
    port: int
    app: Any
    scheme: str = "ws"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"{'https' if self.scheme == 'wss' else 'http'}://127.0.0.1:{self.port}"

    def url(self, app: str = "local/preview", ticket: str | None = None, **query: Any) -> str:
        params = ({"fal_jwt_token": ticket} if ticket else {}) | query
        suffix = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        return f"{self.base}/{app}/realtime{suffix}"

    def ticket(self, sub: str = "7", apps: tuple[str, ...] = ("local/preview",), **claims: Any) -> str:
        return tickets.mint(self.settings.shared_secret or "", sub=sub, apps=apps, issuer="tests", **claims)

    def metric(self, name: str, **labels: str) -> float:
        value = self.app.state.metrics.registry.get_sample_value(name, labels or None)
        return value or 0.0


@asynccontextmanager
async def serve_relay(settings: Settings, **uvicorn_options: Any) -> AsyncIterator[RunningRelay]:
    """Run the relay with uvicorn on a free port inside the test's event loop."""
    port = free_port()
    app = create_app(settings)
    async with running(uvicorn_config(app, settings, host="127.0.0.1", port=port, log_config=None, **uvicorn_options)):
        scheme = "wss" if uvicorn_options.get("ssl_certfile") else "ws"
        yield RunningRelay(settings=settings, port=port, app=app, scheme=scheme)


@asynccontextmanager
async def running(config: uvicorn.Config) -> AsyncIterator[uvicorn.Server]:
    """Serve `config` with uvicorn inside the test's event loop until the block ends."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def relay_settings(local_app_url: str) -> Settings:
    return Settings(shared_secret=SECRET, upstream_url=local_app_url, api_keys=("relay-key-1",))


@pytest.fixture
async def relay(relay_settings: Settings) -> AsyncIterator[RunningRelay]:
    async with serve_relay(relay_settings) as running:
        yield running


@pytest.fixture
def make_relay(local_app_url: str) -> Callable[..., Any]:
    """`async with make_relay(max_frame_bytes=...) as relay:` — a relay with some settings changed."""

    def factory(**changes: Any) -> Any:
        base = Settings(shared_secret=SECRET, upstream_url=local_app_url, api_keys=("relay-key-1",))
        return serve_relay(dataclasses.replace(base, **changes))

    return factory


def pack(**inputs: Any) -> bytes:
    return msgpack.packb(inputs, use_bin_type=True)


async def expect_error(ws: websockets.ClientConnection, error: str, close_code: int) -> dict[str, Any]:
    """Read until the x-fal-error frame; check its code and the close code that follows it."""
    async with asyncio.timeout(10):
        while True:
            frame = await ws.recv()
            if isinstance(frame, str):
                payload = json.loads(frame)
                if payload.get("type") == "x-fal-error":
                    break
        assert payload["error"] == error, payload
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == close_code
    return payload


async def next_frame(ws: websockets.ClientConnection, timeout: float = 10) -> dict[str, Any]:
    """The next binary frame, decoded; a text frame on the way fails the test."""
    async with asyncio.timeout(timeout):
        frame = await ws.recv()
    assert isinstance(frame, bytes), f"expected a frame, got {frame!r}"
    decoded: dict[str, Any] = msgpack.unpackb(frame, raw=False)
    return decoded
