"""The fal-cloud code path: a `wss://` upstream with a certificate to verify and fal's key to present.

fal's cloud cannot be reached from here, so a TLS WebSocket server on loopback stands in for it:
the relay is configured exactly as with `FAL_KEY` set, only the base URL points at loopback and
`SSL_CERT_FILE` names the test CA. It checks what only the relay can get wrong: TLS is verified,
the key goes upstream as `Authorization: Key ...`, and it never reaches the client.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgpack
import trustme
import websockets
from websockets.asyncio.server import ServerConnection, serve

from realtime_server import Settings

from .conftest import SECRET, expect_error, next_frame, pack, serve_relay

FAL_KEY = "fal-key-id:fal-key-secret-that-must-stay-on-the-relay"
APP = "fal-ai/fast-lcm-diffusion"


@asynccontextmanager
async def tls_upstream(ca: trustme.CA, seen: list[str]) -> AsyncIterator[str]:
    """A `wss://` realtime upstream that records each handshake's Authorization and answers every input."""

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws.request.headers.get("Authorization", "") if ws.request else "")
        async for message in ws:
            inputs = msgpack.unpackb(message, raw=False)
            await ws.send(msgpack.packb({"seed": inputs["seed"], "pad": bytes(100_000)}, use_bin_type=True))

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    async with serve(handler, "127.0.0.1", 0, ssl=context, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"wss://127.0.0.1:{port}"


def cloud_settings(url: str) -> Settings:
    return Settings(shared_secret=SECRET, fal_key=FAL_KEY, upstream_url=url, allowed_apps=(APP,))


async def test_tls_upstream_gets_the_fal_key_and_frames_come_back(tmp_path: Path, monkeypatch) -> None:
    """Over verified TLS, upstream sees `Key <FAL_KEY>`; 100 KB frames come back whole; the key never does."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    seen: list[str] = []
    async with tls_upstream(ca, seen) as url, serve_relay(cloud_settings(url)) as relay:
        async with websockets.connect(relay.url(APP, ticket=relay.ticket(apps=(APP,))), max_size=None) as ws:
            for seed in (1, 2, 3):
                await ws.send(pack(prompt="a lighthouse", seed=seed))
                frame = await next_frame(ws)
                assert frame["seed"] == seed and len(frame["pad"]) == 100_000
            response_headers = json.dumps(dict(ws.response.headers))  # type: ignore[union-attr]
    assert seen == [f"Key {FAL_KEY}"]
    assert "fal-key-secret" not in response_headers


async def test_an_upstream_certificate_from_an_unknown_ca_is_refused(tmp_path: Path, monkeypatch) -> None:
    """TLS is verified: a certificate the relay cannot trust ends in UPSTREAM_UNAVAILABLE, not in a session."""
    trusted, other = trustme.CA(), trustme.CA()
    trusted.cert_pem.write_to_path(tmp_path / "ca.pem")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    seen: list[str] = []
    async with tls_upstream(other, seen) as url, serve_relay(cloud_settings(url)) as relay:
        async with websockets.connect(relay.url(APP, ticket=relay.ticket(apps=(APP,)))) as ws:
            await ws.send(pack(prompt="x", seed=1))
            payload = await expect_error(ws, "UPSTREAM_UNAVAILABLE", 1013)
    assert payload["reason"] == f"cannot reach upstream for {APP} (SSLCertVerificationError)"
    assert seen == []

