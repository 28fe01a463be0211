"""Graceful shutdown of the `realtime-server` process: SIGTERM stops accepting, closes with 1012, drains, exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgpack
import pytest
import websockets

from realtime_server import tickets
from realtime_server.cli import free_port

from .conftest import SECRET, pack
from .reliability import wait_ready

DRAIN_SECONDS = 2.0  # RELAY_DRAIN_SECONDS: uvicorn's timeout_graceful_shutdown
EXIT_MARGIN = 1.5  # the embedded app's own stop and interpreter teardown, on a loaded CI machine
SERVICE_RESTART = 1012


@dataclass
class RelayProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    app: int = 0  # pid of the embedded app child

    @property
    def base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def url(self, **claims: object) -> str:
        ticket = tickets.mint(SECRET, apps=["local/preview"], issuer="shutdown", **claims)  # type: ignore[arg-type]
        return f"{self.base}/local/preview/realtime?fal_jwt_token={ticket}"

    def app_pid(self) -> int:
        pid = self.process.pid
        children = [int(c) for task in os.listdir(f"/proc/{pid}/task")
                    for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        assert len(children) == 1, f"expected the embedded app as the only child, found {children}"
        return children[0]


@pytest.fixture
async def relay_process(tmp_path: Path) -> AsyncIterator[RelayProcess]:
    """`python -m realtime_server.cli` with the embedded app, as operators run it."""
    port = free_port()
    env = os.environ | {"PORT": str(port), "RELAY_SHARED_SECRET": SECRET, "RELAY_LOG_LEVEL": "info",
                        "RELAY_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    env.pop("FAL_KEY", None)
    env.pop("RELAY_UPSTREAM_URL", None)
    log = tmp_path / "relay.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "realtime_server.cli"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    running = RelayProcess(process, port, log)
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process, log)
        running.app = running.app_pid()
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if running.app and _alive(running.app):  # never leave an orphan behind, whatever the test found
            os.kill(running.app, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def _wait_exit(process: subprocess.Popen[bytes], limit: float) -> float:
    start = time.monotonic()
    while process.poll() is None:
        if time.monotonic() - start > limit:
            return float("inf")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def _streamer(url: str, seed: int, closed: dict[int, int | None], started: asyncio.Event) -> None:
    """Send inputs and read frames until the relay closes; record the close code."""
    async with websockets.connect(url, open_timeout=30) as ws:
        try:
            async with asyncio.timeout(60):
                while True:
                    await ws.send(pack(prompt="draining", seed=seed, width=64, height=64))
                    frame = await ws.recv()
                    assert msgpack.unpackb(frame, raw=False)["seed"] == seed
                    started.set()
                    await asyncio.sleep(0.05)
        except websockets.ConnectionClosed as exc:
            closed[seed] = exc.rcvd.code if exc.rcvd else None


async def test_sigterm_closes_clients_with_1012_and_exits_within_drain_time(relay_process: RelayProcess) -> None:
    """On SIGTERM: streaming and idle clients get 1012 at once, new connections are refused, the relay exits in time."""
    closed: dict[int, int | None] = {}
    started = [asyncio.Event() for _ in range(3)]
    streams = [asyncio.create_task(_streamer(relay_process.url(sub=f"s{i}"), i, closed, started[i]))
               for i in range(3)]
    idle = await websockets.connect(relay_process.url(sub="idle"))
    async with asyncio.timeout(30):
        for event in started:
            await event.wait()
    relay_process.process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    async with asyncio.timeout(DRAIN_SECONDS):
        await asyncio.gather(*streams)
        with pytest.raises(websockets.ConnectionClosed) as idle_closed:
            await idle.recv()
    told = time.monotonic() - sent
    with pytest.raises(OSError):
        async with websockets.connect(relay_process.url(sub="late"), open_timeout=5):
            pass
    exited = await _wait_exit(relay_process.process, DRAIN_SECONDS + EXIT_MARGIN)
    assert closed == {0: SERVICE_RESTART, 1: SERVICE_RESTART, 2: SERVICE_RESTART}
    assert idle_closed.value.rcvd is not None and idle_closed.value.rcvd.code == SERVICE_RESTART
    assert told < 1.0, f"clients were told {told:.2f} s after SIGTERM"
    assert exited <= DRAIN_SECONDS + EXIT_MARGIN, relay_process.log.read_text()[-2000:]
    assert relay_process.process.returncode in (0, -signal.SIGTERM), relay_process.log.read_text()[-2000:]
    assert "Shutting down" in relay_process.log.read_text()


async def test_stuck_client_does_not_hold_the_shutdown(relay_process: RelayProcess) -> None:
    """A client that never reads and one that never finishes its handshake cannot keep the relay past its drain time."""
    _, slowloris = await asyncio.open_connection("127.0.0.1", relay_process.port)
    slowloris.write(b"GET /local/preview/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    async with websockets.connect(relay_process.url(sub="stuck"), open_timeout=30, max_queue=1,
                                  close_timeout=1) as stuck:
        for seed in range(40):  # big frames it never reads
            await stuck.send(pack(prompt="never read " * 20, seed=seed, width=1024, height=1024))
            await asyncio.sleep(0.02)
        relay_process.process.send_signal(signal.SIGTERM)
        exited = await _wait_exit(relay_process.process, DRAIN_SECONDS + EXIT_MARGIN)
    slowloris.close()
    assert exited <= DRAIN_SECONDS + EXIT_MARGIN, relay_process.log.read_text()[-2000:]
    assert relay_process.process.returncode in (0, -signal.SIGTERM), relay_process.log.read_text()[-2000:]


async def test_sigterm_stops_the_embedded_app_too(relay_process: RelayProcess) -> None:
    """After SIGTERM the embedded app is stopped with the relay (no orphan), and the relay exits with 0."""
    relay_process.process.send_signal(signal.SIGTERM)
    exited = await _wait_exit(relay_process.process, DRAIN_SECONDS + EXIT_MARGIN)
    assert exited <= DRAIN_SECONDS + EXIT_MARGIN
    deadline = time.monotonic() + 5
    while _alive(relay_process.app) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not _alive(relay_process.app), "the embedded app outlived the relay"
    assert relay_process.process.returncode == 0


async def test_console_command_with_no_configuration_serves_the_demo(tmp_path: Path) -> None:
    """README's first command on a fresh machine: `realtime-server` with nothing set starts the embedded app,
    serves the demo page, hands loopback pages tickets, and frames come back as JPEGs."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "FAL_"))} | {"PORT": str(port)}
    log = tmp_path / "relay.log"
    command = Path(sys.executable).with_name("realtime-server")
    with log.open("wb") as out:
        process = subprocess.Popen([str(command)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process, log)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            page = await http.get("/")
            answer = (await http.post("/dev/ticket", json={})).json()
        async with websockets.connect(f"{answer['url']}?fal_jwt_token={answer['ticket']}") as ws:
            await ws.send(pack(prompt="a fresh machine", seed=11))
            result = msgpack.unpackb(await ws.recv(), raw=False)
        process.send_signal(signal.SIGTERM)
        exited = await _wait_exit(process, DRAIN_SECONDS + EXIT_MARGIN + 5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert page.status_code == 200 and "<fal-live-canvas" in page.text
    assert answer["url"] == f"ws://127.0.0.1:{port}/local/preview/realtime"
    assert result["seed"] == 11 and result["images"][0]["content"][:3] == b"\xff\xd8\xff"
    assert exited < float("inf") and process.returncode == 0
    assert "DEV MODE" in log.read_text()
