"""Frame splicing: relay WebSocket frames between two sockets as the bytes received.

Server-to-client frames are unmasked on both hops (upstream -> relay and relay -> browser), so an
upstream frame, header and payload, can be written to the client transport unchanged: the relay
reads each frame's header to find its boundary and never copies or re-frames the payload. A
client's masked input frame is unmasked once for the relay's checks, then forwarded upstream with
its own mask. No task switch, queue or allocation per frame on the fast path: everything runs in
the transports' `data_received` callbacks.

Policies kept from `relay.py`: latest frame wins per viewer (while a viewer's transport is paused,
its newest whole frame is parked and older parked frames are dropped), newest input wins upstream
(while upstream is paused, one input waits and newer ones replace it), text frames from upstream
are shown to a hook before they are forwarded (so x-fal-error TIMEOUT can be absorbed), and binary
upstream frames must start like a msgpack map.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast
from urllib.parse import urlsplit

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
FIN = 0x80
# First byte of a msgpack map: fixmap, map16 or map32.
MAP_MARKERS = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HANDSHAKE = 16 * 1024


class SpliceError(Exception):
    """Raised when a peer breaks the protocol; `upstream` says which side did."""

    def __init__(self, reason: str, *, upstream: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.upstream = upstream


def parse_header(buf: bytes | bytearray, pos: int, end: int) -> tuple[int, int, int, bool] | None:
    """`(first byte, header length, payload length, masked)` of the frame at `pos`, or None if incomplete."""
    if end - pos < 2:
        return None
    b1 = buf[pos + 1]
    length = b1 & 0x7F
    size = 2
    if length == 126:
        if end - pos < 4:
            return None
        (length,) = struct.unpack_from(">H", buf, pos + 2)
        size = 4
    elif length == 127:
        if end - pos < 10:
            return None
        (length,) = struct.unpack_from(">Q", buf, pos + 2)
        size = 10
    masked = bool(b1 & 0x80)
    if masked:
        size += 4
    if end - pos < size:
        return None
    return buf[pos], size, length, masked


def unmask(payload: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR `payload` with the 4-byte masking key, as one big-integer operation (no per-byte loop)."""
    n = len(payload)
    if not n:
        return b""
    keystream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(n, "big")


def frame_header(opcode: int, length: int, mask: bytes | None = None, fin: bool = True) -> bytes:
    """A frame header (used by tests and for the relay's own frames; relayed frames keep theirs)."""
    first = (FIN if fin else 0) | opcode
    bit = 0x80 if mask else 0
    if length < 126:
        head = struct.pack(">BB", first, bit | length)
    elif length < 1 << 16:
        head = struct.pack(">BBH", first, bit | 126, length)
    else:
        head = struct.pack(">BBQ", first, bit | 127, length)
    return head + (mask or b"")


class Writer(Protocol):
    """The part of `asyncio.Transport` a splice writes to."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...


@dataclass(eq=False)
class Sink:
    """One viewer's transport and its latest-frame-wins state."""

    transport: Writer
    paused: bool = False  # set from the transport's protocol: pause_writing / resume_writing
    parked: bytes | None = None  # newest whole frame waiting for the transport to drain
    dropped: int = 0
    written: int = 0
    _run: int = -1  # start of the current run of forwarded bytes in the chunk being fed
    _parking: bytearray | None = None

    def congested(self) -> bool:
        """Paused with bytes still queued. The flag alone can be stale: the loop may deliver the next
        upstream read before the write-ready event that calls `resume_writing`, and parking a frame
        then would cost a copy and a loop turn for nothing."""
        if not self.paused:
            return False
        backlog = getattr(self.transport, "get_write_buffer_size", None)
        if backlog is None or backlog():
            return True
        self.paused = False
        if self.parked is not None:  # a newer frame is starting: the parked one is stale
            self.parked = None
            self.dropped += 1
        return False

    def resume(self) -> None:
        self.paused = False
        if self.parked is not None:
            frame, self.parked = self.parked, None
            self.transport.write(frame)
            self.written += 1


class UpstreamHooks(Protocol):
    def on_upstream_text(self, payload: bytes) -> bool:
        """Called with each whole text frame from upstream; return True to forward it to the viewers."""

    def on_upstream_close(self, payload: bytes) -> None:
        """Called with the payload of upstream's close frame (never forwarded: the relay decides)."""

    def on_upstream_frame(self) -> None:
        """Called after each whole binary frame from upstream has been relayed (metrics, answered inputs)."""


@dataclass(eq=False)
class UpstreamToClients:
    """Scans the upstream byte stream and writes each frame's own bytes to every viewer (cut-through)."""

    hooks: UpstreamHooks
    sinks: list[Sink] = field(default_factory=list)
    frames: int = 0  # whole frames relayed (for metrics)
    closed: bool = False
    _head: bytes = b""  # a header split across reads (at most 14 bytes + 1 payload byte)
    _left: int = 0  # bytes of the current frame still to come
    _hold: bytearray | None = None  # a text or close frame, kept whole for the hook
    _hold_header: int = 0
    _hold_opcode: int = 0
    _output: bool = False  # the current frame is a whole binary message (an output)
    _joining: list[Sink] = field(default_factory=list)
    on_error: Callable[[Exception], None] | None = None  # set: errors go here instead of the read callback

    def feed(self, data: bytes) -> None:
        """Relay one read. The common cases (a read that is exactly one output frame, or the middle of
        a frame going to one viewer) are handled inline: every Python call costs on this path."""
        try:
            if not self._head and len(self.sinks) == 1 and not self._joining and not self.closed:
                sink = self.sinks[0]
                if self._left == 0:
                    n = len(data)
                    if n > 2 and data[0] == 0x82 and data[1] < 0x80 and not sink.paused:
                        length, size = data[1], 2
                        if length == 126:
                            (length,) = struct.unpack_from(">H", data, 2) if n >= 4 else (-1,)
                            size = 4
                        elif length == 127:
                            (length,) = struct.unpack_from(">Q", data, 2) if n >= 10 else (-1,)
                            size = 10
                        whole = size + length
                        if length > 0 and whole >= n > size and data[size] in MAP_MARKERS:
                            sink.transport.write(data)  # one output frame as read, or the start of one
                            if whole == n:
                                self.frames += 1
                                self.hooks.on_upstream_frame()
                            else:
                                self._left, self._output = whole - n, True
                            return
                elif self._hold is None and sink._parking is None and len(data) < self._left:
                    sink.transport.write(data)  # the middle of a frame this viewer is receiving
                    self._left -= len(data)
                    return
            self._feed(data)
        except Exception as exc:
            if self.on_error is None:
                raise
            self.closed = True  # nothing more is relayed once a side broke the protocol
            self.on_error(exc)

    def add_sink(self, sink: Sink) -> None:
        """Add a viewer; it starts receiving at the next frame boundary, never mid-frame."""
        if self._left == 0 and not self._head:
            self.sinks.append(sink)
        else:
            self._joining.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        for group in (self.sinks, self._joining):
            if sink in group:
                group.remove(sink)

    def _feed(self, data: bytes) -> None:
        if self.closed:
            return
        if self._head:
            data = self._head + data  # only after a header split across reads: rare and small
            self._head = b""
        elif self._left and self._hold is None:
            for sink in self.sinks:  # the rest of a frame that is being forwarded
                if sink._parking is None:
                    sink._run = 0
        pos, end = 0, len(data)
        while pos < end:
            if self._left == 0:
                header = parse_header(data, pos, end)
                if header is None or (header[2] and end - pos < header[1] + 1):
                    self._head = data[pos:end]  # wait for the header and the payload's first byte
                    break
                self._start_frame(data, pos, *header)
            take = min(self._left, end - pos)
            if self._hold is not None:
                self._hold += data[pos : pos + take]
            else:
                for sink in self.sinks:
                    if sink._parking is not None:
                        sink._parking += data[pos : pos + take]
            pos += take
            self._left -= take
            if self._left == 0:
                self._end_frame(data, pos)
                if self.closed:
                    return
        self._flush(data, pos)

    def _start_frame(self, data: bytes, pos: int, first: int, size: int, length: int, masked: bool) -> None:
        if masked:
            raise SpliceError("upstream sent a masked frame", upstream=True)
        opcode = first & 0x0F
        if opcode == OP_BINARY and first & FIN and length and data[pos + size] not in MAP_MARKERS:
            raise SpliceError("upstream sent a binary frame that is not a msgpack map", upstream=True)
        self._left = size + length
        if self._joining:
            self.sinks += self._joining
            self._joining.clear()
        if opcode in (OP_TEXT, OP_CLOSE):
            self._flush(data, pos)
            self._hold, self._hold_header, self._hold_opcode = bytearray(), size, opcode
            return
        whole_message = self._output = opcode == OP_BINARY and bool(first & FIN)
        for sink in self.sinks:
            if whole_message and sink.congested():
                self._flush_sink(sink, data, pos)  # park this frame instead of writing it
                sink._parking = bytearray()
            elif sink._run < 0:
                sink._run = pos

    def _end_frame(self, data: bytes, pos: int) -> None:
        self.frames += 1
        for sink in self.sinks:
            if sink._parking is not None:
                if sink.parked is not None:
                    sink.dropped += 1
                sink.parked, sink._parking = bytes(sink._parking), None
        if self._hold is None:
            if self._output:
                self.hooks.on_upstream_frame()
            return
        frame, self._hold = bytes(self._hold), None
        payload = frame[self._hold_header :]
        if self._hold_opcode == OP_CLOSE:
            self._flush(data, pos)
            self.closed = True
            self.hooks.on_upstream_close(payload)
        elif self.hooks.on_upstream_text(payload):
            for sink in self.sinks:
                sink.transport.write(frame)
                sink.written += 1

    def _flush(self, data: bytes, pos: int) -> None:
        for sink in self.sinks:
            self._flush_sink(sink, data, pos)

    @staticmethod
    def _flush_sink(sink: Sink, data: bytes, pos: int) -> None:
        if sink._run < 0:
            return
        start, sink._run = sink._run, -1
        if start == 0 and pos == len(data):
            sink.transport.write(data)  # the whole read, as received: no copy
        elif pos > start:
            sink.transport.write(memoryview(data)[start:pos])


class ClientHooks(Protocol):
    def on_input(self, payload: bytes) -> None:
        """Check one unmasked input (limits, msgpack); raise to refuse it and end the connection."""

    def on_client_close(self, payload: bytes) -> None:
        """Called with the payload of the client's close frame."""


@dataclass(eq=False)
class ClientToUpstream:
    """Parses the client's masked frames, checks each input, forwards its original bytes upstream."""

    hooks: ClientHooks
    max_frame_bytes: int
    upstream: Writer | None = None
    upstream_paused: bool = False
    pending: bytes | None = None  # newest input not yet sent (newest input wins)
    unanswered: bytes | None = None  # the last input sent, masked as the client framed it, until an output comes
    dropped: int = 0
    closed: bool = False
    _buf: bytearray = field(default_factory=bytearray)
    on_error: Callable[[Exception], None] | None = None  # set: errors go here instead of the read callback

    def feed(self, data: bytes) -> None:
        """Take one read. The usual case, a read that is exactly one small masked binary frame, is
        handled inline (no copy, few calls); anything else goes the general way."""
        try:
            n = len(data)
            if not self._buf and n > 6 and data[0] == 0x82 and not self.closed:
                length = data[1] & 0x7F
                if data[1] & 0x80 and length < 126 and length + 6 == n:
                    self.hooks.on_input(unmask(data[6:], data[2:6]))
                    upstream = self.upstream
                    if upstream is None or self.upstream_paused:
                        self.send_input(data)
                    else:
                        upstream.write(data)
                        self.unanswered = data
                    return
            self._feed(data)
        except Exception as exc:
            if self.on_error is None:
                raise
            self.closed = True  # nothing more is relayed once a side broke the protocol
            self.on_error(exc)

    def _feed(self, data: bytes) -> None:
        if self.closed:
            return
        buf = self._buf
        if not buf:  # one read holding exactly one whole frame: no copy
            header = parse_header(data, 0, len(data))
            if header is not None and self._check(header) == len(data):
                self._frame(header[0], data, header[1])
                return
        buf += data
        pos, end = 0, len(buf)
        while not self.closed:
            header = parse_header(buf, pos, end)
            if header is None:
                break
            first, size, length, masked = header
            if end - pos < self._check(header):
                break
            frame = bytes(buf[pos : pos + size + length])
            pos += size + length
            self._frame(first, frame, size)
        del buf[:pos]

    def _check(self, header: tuple[int, int, int, bool]) -> int:
        """Refuse an oversized or unmasked frame from its header alone; return the frame's length."""
        _, size, length, masked = header
        if length > self.max_frame_bytes:
            raise SpliceError(f"frame is {length} bytes; this relay accepts at most {self.max_frame_bytes}",
                              upstream=False)
        if not masked:
            raise SpliceError("client frames must be masked", upstream=False)
        return size + length

    def _frame(self, first: int, frame: bytes, size: int) -> None:
        opcode = first & 0x0F
        if opcode == OP_BINARY and first & FIN:
            self.hooks.on_input(unmask(memoryview(frame)[size:], frame[size - 4 : size]))
            self.send_input(frame)
        elif opcode in (OP_PING, OP_PONG):
            if self.upstream is not None:
                self.upstream.write(frame)  # keepalive passes through; the far end answers
        elif opcode == OP_CLOSE:
            self.closed = True
            self.hooks.on_client_close(unmask(memoryview(frame)[size:], frame[size - 4 : size]))
        elif opcode == OP_TEXT:
            raise SpliceError("expected a binary msgpack frame, got a text frame", upstream=False)
        else:
            raise SpliceError("fragmented inputs are not supported", upstream=False)

    def send_input(self, frame: bytes) -> None:
        if self.upstream is None or self.upstream_paused:
            if self.pending is not None:
                self.dropped += 1
            self.pending = frame
            return
        self.upstream.write(frame)
        self.unanswered = frame

    def attach(self, upstream: Writer) -> None:
        """Send to `upstream` from now on, starting with the input that was waiting, if any."""
        self.upstream, self.upstream_paused = upstream, False
        self.resume()

    def resume(self) -> None:
        self.upstream_paused = False
        if self.pending is not None:
            frame, self.pending = self.pending, None
            self.send_input(frame)


# Opening the upstream leg with a minimal client handshake, so its transport is ours to splice.


@dataclass(frozen=True)
class Handshake:
    request: bytes
    accept: bytes


def client_handshake(url: str, headers: dict[str, str] | None = None) -> Handshake:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16))
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13", "User-Agent: fal-realtime-relay"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
    return Handshake(("\r\n".join(lines) + "\r\n\r\n").encode(), accept)


class UpstreamProtocol(asyncio.Protocol):
    """The upstream socket: handshake first, then every read goes straight to `on_data`."""

    def __init__(self, handshake: Handshake) -> None:
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_data: Callable[[bytes], None] | None = None
        self.on_pause: Callable[[bool], None] | None = None
        self._handshake = handshake
        self._buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport.write(self._handshake.request)

    def data_received(self, data: bytes) -> None:
        if self.on_data is not None:
            self.on_data(data)
            return
        if self.opened.done():
            self._buf += data  # frames that came before the splice was attached
            return
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_HANDSHAKE:
                self.opened.set_exception(ConnectionError("upstream handshake response too large"))
            return
        head, self._buf = self._buf[:end].decode("latin-1"), self._buf[end + 4 :]
        status, *header_lines = head.split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        code = status.split(" ", 2)[1] if status.count(" ") else ""
        if code != "101":
            self.opened.set_exception(ConnectionRefusedError(f"upstream answered HTTP {code or '?'}"))
        elif fields.get("sec-websocket-accept", "").encode() != self._handshake.accept:
            self.opened.set_exception(ConnectionError("upstream sent a wrong Sec-WebSocket-Accept"))
        else:
            self.opened.set_result(b"")

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
            self.opened.set_exception(exc or ConnectionResetError("upstream closed during the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)


async def open_upstream(url: str, headers: dict[str, str] | None = None,
                        timeout: float = 10.0) -> tuple[asyncio.Transport, UpstreamProtocol]:
    """Connect and complete the WebSocket handshake (no extensions: frames pass through as sent)."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    loop = asyncio.get_running_loop()
    handshake = client_handshake(url, headers)
    async with asyncio.timeout(timeout):
        transport, protocol = await loop.create_connection(
            lambda: UpstreamProtocol(handshake), parts.hostname or "127.0.0.1", port, ssl=True if secure else None,
        )
        try:
            await protocol.opened
        except BaseException:
            transport.close()
            raise
    return transport, protocol
