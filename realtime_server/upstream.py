"""Open the upstream realtime connection: fal's cloud or the embedded app, by the same code.

Only the base URL and the credentials differ. The URL is built the way fal-client builds it
(`{base}/{app}/{path}?max_buffering=N`), and fal's key travels as `Authorization: Key ...`,
which fal accepts in place of a short-lived JWT; it never leaves the relay.

The handshake is done here, by hand and minimally (no extensions offered, so frames stay as the
app framed them), because the relay splices this socket's frames straight to the client
(`splice`) and needs the raw transport, which no WebSocket client library hands over.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode, urlsplit

from .protocol import UpstreamUnavailable
from .settings import Settings

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HANDSHAKE_RESPONSE = 16 * 1024


@dataclass(frozen=True)
class Target:
    """What a client asked to open: `owner/alias`, the endpoint path, and fal's buffering hint."""

    app: str
    path: str = "realtime"
    max_buffering: int | None = None


def upstream_url(settings: Settings, target: Target) -> str:
    url = f"{settings.resolved_upstream_url()}/{target.app}/{target.path}"
    if target.max_buffering is not None:
        url += "?" + urlencode({"max_buffering": target.max_buffering})
    return url


class HandshakeRefused(Exception):
    """The upstream answered the upgrade with another HTTP status."""

    def __init__(self, status: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class UpstreamProtocol(asyncio.Protocol):
    """The upstream socket: the upgrade handshake first, then every read goes straight to `on_data`."""

    def __init__(self, request: bytes, accept: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.on_data: Callable[[bytes], None] | None = None
        self.on_pause: Callable[[bool], None] | None = None
        self._request, self._accept = request, accept
        self._buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self.on_data is not None:
            self.on_data(data)
            return
        self._buf += data
        if self.opened.done():
            return  # frames that came before the splice was attached; `take_buffered` hands them on
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_HANDSHAKE_RESPONSE:
                self.opened.set_exception(ConnectionError("handshake response too large"))
            return
        head, self._buf = self._buf[:end].decode("latin-1"), self._buf[end + 4 :]
        status, *header_lines = head.split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
        code = status.split(" ", 2)[1] if status.count(" ") else "?"
        if code != "101":
            self.opened.set_exception(HandshakeRefused(code))
        elif fields.get("sec-websocket-accept", "").encode() != self._accept:
            self.opened.set_exception(ConnectionError("wrong Sec-WebSocket-Accept"))
        elif fields.get("sec-websocket-extensions"):
            self.opened.set_exception(ConnectionError("extension negotiated that was not offered"))
        else:
            self.opened.set_result(None)

    def take_buffered(self, on_data: Callable[[bytes], None]) -> None:
        """Route reads to `on_data` from now on, first handing it what arrived since the handshake."""
        self.on_data = on_data
        leftover, self._buf = self._buf, b""
        if leftover:
            on_data(leftover)

    def pause_writing(self) -> None:
        if self.on_pause:
            self.on_pause(True)

    def resume_writing(self) -> None:
        if self.on_pause:
            self.on_pause(False)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionResetError("closed during the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)


@functools.lru_cache(maxsize=4)
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """The default client context (system CAs, or SSL_CERT_FILE/SSL_CERT_DIR), built once, not per leg."""
    return ssl.create_default_context()


def _handshake(url: str, headers: dict[str, str]) -> tuple[bytes, bytes]:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16))
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13", "User-Agent: fal-realtime-relay"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), accept


async def connect(settings: Settings, target: Target) -> tuple[asyncio.Transport, UpstreamProtocol]:
    """Open the upstream WebSocket or raise `UpstreamUnavailable` with a reason a person can act on."""
    url = upstream_url(settings, target)
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    headers = {"Authorization": f"Key {settings.fal_key}"} if settings.fal_key else {}
    request, accept = _handshake(url, headers)
    loop = asyncio.get_running_loop()
    transport: asyncio.Transport | None = None
    try:
        async with asyncio.timeout(settings.upstream_open_timeout):
            transport, protocol = await loop.create_connection(
                lambda: UpstreamProtocol(request, accept), parts.hostname or "", parts.port or (443 if secure else 80),
                ssl=_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if secure else None,
            )
            await protocol.opened
    except HandshakeRefused as exc:
        _close(transport)
        raise UpstreamUnavailable(f"upstream refused {target.app} with HTTP {exc.status}") from None
    except TimeoutError:
        _close(transport)
        raise UpstreamUnavailable(f"upstream did not answer within {settings.upstream_open_timeout:g} s") from None
    except (OSError, ConnectionError) as exc:
        _close(transport)
        raise UpstreamUnavailable(f"cannot reach upstream for {target.app} ({type(exc).__name__})") from None
    except asyncio.CancelledError:  # the connection's lifetime ended mid-open: leave no half-open socket
        _close(transport)
        raise
    return transport, protocol


def _close(transport: asyncio.Transport | None) -> None:
    if transport is not None:
        transport.abort()
