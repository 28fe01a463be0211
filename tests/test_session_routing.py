"""deploy/nginx.conf with two relay replicas: viewers reach their driver's replica by `?session=`."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import websockets

from realtime_server.cli import free_port

from .conftest import pack

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"


def _nginx_conf(tmp: Path, listen: int, replicas: tuple[int, int]) -> Path:
    site = EXAMPLE.read_text()
    for example, port in zip(("127.0.0.1:8000", "127.0.0.1:8001"), replicas, strict=True):
        site = site.replace(example, f"127.0.0.1:{port}")
    site = site.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{listen}")
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp}/body;\n proxy_temp_path {tmp}/proxy;\n"
        f" fastcgi_temp_path {tmp}/fcgi;\n uwsgi_temp_path {tmp}/uwsgi;\n scgi_temp_path {tmp}/scgi;\n{site}\n}}\n"
    )
    return conf


async def test_nginx_routes_viewers_to_the_drivers_replica(make_relay, tmp_path: Path) -> None:
    """Twelve sessions through nginx over two replicas: every viewer gets its own driver's frames."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "Debian's nginx is needed (scripts/test installs it)"
    async with make_relay() as first, make_relay() as second:
        port = free_port()
        conf = _nginx_conf(tmp_path, port, (first.port, second.port))
        process = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf)])
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                        writer.close()
                        break
                    except OSError:
                        assert process.poll() is None, (tmp_path / "error.log").read_text()
                        await asyncio.sleep(0.05)
            for index in range(12):
                session = f"thread-{index}"
                driver_ticket = first.ticket(sub=f"d{index}", session=session, role="driver")
                viewer_ticket = first.ticket(sub=f"v{index}", session=session, role="viewer")
                base = f"ws://127.0.0.1:{port}/local/preview/realtime?session={session}&fal_jwt_token="
                async with websockets.connect(base + driver_ticket) as driver, \
                        websockets.connect(base + viewer_ticket) as viewer:
                    await driver.send(pack(prompt=f"session {index}", seed=index))
                    expected = await driver.recv()
                    async with asyncio.timeout(5):
                        while (frame := await viewer.recv()) != expected:
                            assert isinstance(frame, str), "a viewer got another session's frame"
            opened = [relay.metric("relay_connections_total", outcome="accepted") for relay in (first, second)]
            assert sum(opened) == 24
            assert min(opened) > 0, f"all sessions landed on one replica: {opened}"
            for index in range(10):  # no session: an empty hash key, which nginx spreads round-robin
                plain = f"ws://127.0.0.1:{port}/local/preview/realtime?fal_jwt_token={first.ticket(sub=f'p{index}')}"
                async with websockets.connect(plain) as ws:
                    await ws.send(pack(prompt="no session", seed=index))
                    await ws.recv()
            plain_opened = [relay.metric("relay_connections_total", outcome="accepted") - before
                            for relay, before in zip((first, second), opened, strict=True)]
            assert plain_opened == [5, 5], plain_opened
        finally:
            process.terminate()
            process.wait(timeout=10)
