"""Dev mode never spends real fal credits: no start with FAL_KEY and no secret unless asked, and no
ticket or connection for a request that came through a proxy or tunnel, whatever address it shows."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import msgpack
import pytest
import websockets

from realtime_server import tickets
from realtime_server.cli import free_port
from realtime_server.settings import Settings

from .conftest import DEV_MODE, expect_error, next_frame, pack
from .reliability import wait_ready
from .upstreams import FAULT_APPS, fault_upstream

FAL_KEY = "fal-key-id:fal-key-secret-for-dev-mode-tests"
PROXY_HEADERS = {
    "X-Forwarded-For": "127.0.0.1",  # even one that claims loopback
    "Forwarded": "for=127.0.0.1",
    "X-Forwarded-Host": "relay.example",
    "X-Forwarded-Proto": "https",
    "X-Real-IP": "127.0.0.1",
    "X-Client-IP": "203.0.113.9",
    "X-Cluster-Client-IP": "203.0.113.9",
    "CF-Connecting-IP": "203.0.113.9",
    "True-Client-IP": "203.0.113.9",
    "Fastly-Client-IP": "203.0.113.9",
    "Via": "1.1 tunnel",
}


def _environ(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_") and k not in ("FAL_KEY", "PORT")}
    return {**environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **extra}


def test_fal_key_without_secret_refuses_to_start() -> None:
    """FAL_KEY set, RELAY_SHARED_SECRET not: the relay exits non-zero with one message naming both."""
    result = subprocess.run([sys.executable, "-m", "realtime_server.cli"], env=_environ(FAL_KEY=FAL_KEY),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()
    assert len(message) == 1, result.stderr
    assert "FAL_KEY is set but RELAY_SHARED_SECRET is not" in message[0]
    assert "RELAY_DEV_MODE=1" in message[0] and FAL_KEY not in result.stderr


def test_settings_name_what_to_set() -> None:
    """The same rule holds for settings built in code, and a secret with the opt-in is a contradiction."""
    with pytest.raises(ValueError, match="set RELAY_SHARED_SECRET to the secret your Odoo signs tickets with"):
        Settings(fal_key=FAL_KEY)
    with pytest.raises(ValueError, match="RELAY_DEV_MODE=1 is set with credentials"):
        Settings.from_environ({"FAL_KEY": FAL_KEY, "RELAY_SHARED_SECRET": "s", "RELAY_DEV_MODE": "1"})
    assert Settings.from_environ({"FAL_KEY": FAL_KEY, "RELAY_DEV_MODE": "1"}).dev_mode
    assert Settings.from_environ({}).dev_mode  # the embedded app alone needs no opt-in


async def test_explicit_opt_in_starts_and_warns(tmp_path: Path) -> None:
    """With RELAY_DEV_MODE=1 the relay starts with FAL_KEY and no secret, says that loopback spends the
    key's credits, and hands loopback pages tickets."""
    port = free_port()
    log = tmp_path / "relay.log"
    async with fault_upstream() as upstream:
        environ = _environ(FAL_KEY=FAL_KEY, RELAY_DEV_MODE="1", PORT=str(port), RELAY_UPSTREAM_URL=upstream,
                           RELAY_ALLOWED_APPS=",".join(FAULT_APPS))
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "realtime_server.cli"], env=environ,
                                       stdout=out, stderr=subprocess.STDOUT)
        try:
            await wait_ready(f"http://127.0.0.1:{port}", process, log)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                answer = await http.post("/dev/ticket", json={"app": "fault/ack"})
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert answer.status_code == 200 and answer.json()["ticket"]
    text = log.read_text()
    assert "DEV MODE WITH FAL_KEY (RELAY_DEV_MODE=1): anyone who appears as loopback gets tickets and spends " \
           "this key's fal credits" in text
    assert FAL_KEY not in text


@pytest.mark.parametrize("header", sorted(PROXY_HEADERS))
async def test_proxied_loopback_gets_no_ticket_and_no_connection(make_relay, header: str) -> None:
    """A loopback request carrying a proxy or tunnel header is not loopback to dev mode: no ticket, no socket;
    the same ticket from plain loopback still streams."""
    proxied = {header: PROXY_HEADERS[header]}
    async with make_relay(**DEV_MODE) as relay, httpx.AsyncClient(base_url=relay.http) as http:
        refused = await http.post("/dev/ticket", json={}, headers=proxied)
        ticket = (await http.post("/dev/ticket", json={})).json()["ticket"]
        async with websockets.connect(relay.url(ticket=ticket), additional_headers=proxied) as ws:
            payload = await expect_error(ws, "UNAUTHORIZED", 1008)
        async with websockets.connect(relay.url(ticket=ticket)) as ws:
            await ws.send(pack(prompt="dev", seed=3))
            assert (await next_frame(ws))["seed"] == 3
    assert refused.status_code == 403
    assert refused.json() == {"error": "no dev ticket: dev mode admits loopback clients only, never through a proxy "
                                        "or tunnel"}
    assert payload["reason"] == ("this relay runs in dev mode (no RELAY_SHARED_SECRET): dev mode admits loopback "
                                 "clients only, never through a proxy or tunnel")


async def _handshake(relay, path: str, host: str) -> tuple[int, bytes]:
    """A WebSocket handshake that says `host` in `Host`, as a page whose name rebinds to 127.0.0.1 does: the
    HTTP status, and after a 101 the first server frame's payload."""
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    try:
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split()[1])
            if status != 101:
                return status, b""
            length = (await reader.readexactly(2))[1]
            if length == 126:  # an x-fal-error is under 64 KB
                length = int.from_bytes(await reader.readexactly(2))
            return status, await reader.readexactly(length)
    finally:
        writer.close()


REBOUND = ("rebound.example", "rebound.example:8000", "127.0.0.1.nip.io", "localhost.evil.example", "127.0.0.2",
           "[::2]", "")


async def test_dev_mode_answers_local_host_names_only(make_relay) -> None:
    """DNS rebinding: a page on another site whose name resolves to 127.0.0.1 is same-origin with the relay but
    names its own host: no dev ticket (403) and no socket (UNAUTHORIZED); localhost, 127.0.0.1 and [::1] with
    any port stream."""
    async with make_relay(**DEV_MODE) as relay, httpx.AsyncClient(base_url=relay.http) as http:
        ticket = (await http.post("/dev/ticket", json={})).json()["ticket"]
        path = f"/local/preview/realtime?fal_jwt_token={ticket}"
        for host in REBOUND:
            refused = await http.post("/dev/ticket", json={}, headers={"Host": host})
            assert refused.status_code == 403, host
            assert refused.json() == {"error": "no dev ticket: dev mode answers requests for localhost, 127.0.0.1 or "
                                               "[::1] only, not another host name"}
            status, frame = await _handshake(relay, path, host)
            assert status == 101 and json.loads(frame)["error"] == "UNAUTHORIZED", (host, frame)
            assert "not another host name" in json.loads(frame)["reason"]
        for host in ("localhost", f"localhost:{relay.port}", f"127.0.0.1:{relay.port}", "[::1]:5173", "LOCALHOST"):
            answer = await http.post("/dev/ticket", json={}, headers={"Host": host})
            assert answer.status_code == 200 and answer.json()["url"].startswith(f"ws://{host}/"), host
        async with websockets.connect(f"ws://localhost:{relay.port}/local/preview/realtime?fal_jwt_token={ticket}") \
                as ws:
            await ws.send(pack(prompt="dev", seed=4))
            assert (await next_frame(ws))["seed"] == 4


def test_api_keys_are_credentials() -> None:
    """Relay API keys alone are a relay for scripts and fal's clients: not dev mode, so FAL_KEY needs no opt-in;
    RELAY_DEV_MODE=1 with keys is a contradiction."""
    keyed = Settings.from_environ({"FAL_KEY": FAL_KEY, "RELAY_API_KEYS": "script-key-1"})
    assert not keyed.dev_mode and keyed.uses_fal_cloud
    with pytest.raises(ValueError, match="RELAY_DEV_MODE=1 is set with credentials"):
        Settings.from_environ({"FAL_KEY": FAL_KEY, "RELAY_API_KEYS": "k", "RELAY_DEV_MODE": "1"})


async def test_a_relay_with_keys_alone_serves_key_clients_from_anywhere(make_relay) -> None:
    """Keys only, no secret: a key client that is not on loopback (uvicorn takes X-Forwarded-For from a local
    proxy) streams, an unknown key and a ticket are refused, and there are no dev tickets."""
    outside = {"X-Forwarded-For": "192.0.2.2"}
    async with fault_upstream() as upstream, \
            make_relay(shared_secret=None, api_keys=("script-key-1",), upstream_url=upstream,
                       allowed_apps=FAULT_APPS) as relay, httpx.AsyncClient(base_url=relay.http) as http:
        assert not relay.settings.dev_mode
        url = relay.url("fault/ack")
        async with websockets.connect(url, additional_headers={**outside, "Authorization": "Key script-key-1"}) as ws:
            await ws.send(pack(seq=1))
            assert msgpack.unpackb((await next_frame(ws))["input"]) == {"seq": 1}
        async with websockets.connect(url, additional_headers={**outside, "Authorization": "Key guessed"}) as ws:
            await expect_error(ws, "UNAUTHORIZED", 1008)
        ticket = tickets.mint("a-secret-nobody-configured-on-this-relay-000", sub="7", apps=["fault/ack"],
                              issuer="tests")
        async with websockets.connect(relay.url("fault/ack", ticket=ticket)) as ws:
            await expect_error(ws, "UNAUTHORIZED", 1008)
        assert (await http.post("/dev/ticket", json={})).status_code == 404
