"""Frame splicing: relay WebSocket frames between two sockets as the bytes received.

Server-to-client frames are unmasked on both hops (upstream -> relay and relay -> browser), so an
upstream frame, header and payload, can be written to the client transport unchanged: the relay
reads each frame's header to find its boundary and never copies or re-frames the payload. A
client's masked input frame is unmasked once for the relay's checks, then forwarded upstream with
its own mask. No task switch, queue or allocation per frame on the fast path: everything runs in
the transports' `data_received` callbacks.

Policies kept from the relay: latest frame wins for a slow client (while its transport is paused,
the newest whole frame is parked and older parked frames are dropped), newest input wins upstream
(while upstream is paused, one input waits and newer ones replace it), text frames from upstream
are shown to a hook before they are forwarded (so x-fal-error TIMEOUT can be absorbed), and binary
upstream frames must start like a msgpack map. Keepalive is per hop: each side's pings go to a
hook for the relay to answer, never through. A fragmented input is checked whole and sent on as
one frame.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
FIN = 0x80
# First byte of a msgpack map: fixmap, map16 or map32.
MAP_MARKERS = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}


class SpliceError(Exception):
    """Raised when a peer breaks the protocol; `upstream` says which side did."""

    def __init__(self, reason: str, *, upstream: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.upstream = upstream


class FrameTooLarge(SpliceError):
    """Raised from a client frame's header (or a fragmented input's running total) alone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, upstream=False)


class InvalidData(SpliceError):
    """Raised for a well-formed client frame whose content is wrong: text instead of an input."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, upstream=False)


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


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A whole frame as a client must send it: masked with a fresh random key (RFC 6455, 5.3)."""
    mask = os.urandom(4)
    return frame_header(opcode, len(payload), mask) + unmask(payload, mask)


class Writer(Protocol):
    """The part of `asyncio.Transport` a splice writes to."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...


@dataclass(eq=False)
class Sink:
    """A client's transport and its latest-frame-wins state."""

    transport: Writer
    paused: bool = False  # set from the transport's protocol: pause_writing / resume_writing
    parked: bytes | None = None  # newest whole frame waiting for the transport to drain
    dropped: int = 0  # outputs skipped for a newer one
    written: int = 0  # frames written (outputs and forwarded text)
    _run: int = -1  # start of the current run of forwarded bytes in the chunk being fed
    _parking: bytearray | None = None
    _counted: tuple[int, int] = (0, 0)  # (written, dropped) as of the last `take_counts`

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

    def park(self, frame: bytes) -> None:
        """Hold a whole frame until the transport drains; one parked before it is dropped (latest wins)."""
        if self.parked is not None:
            self.dropped += 1
        self.parked = frame

    def offer(self, frame: bytes, output: bool) -> None:
        """Write one whole frame now; while congested, park it if it is an output, else skip it."""
        if not self.congested():
            self.transport.write(frame)
            self.written += 1
        elif output:
            self.park(frame)
        else:
            self.dropped += 1

    def resume(self) -> None:
        self.paused = False
        if self.parked is not None:
            frame, self.parked = self.parked, None
            self.transport.write(frame)
            self.written += 1

    def take_counts(self) -> tuple[int, int]:
        """Frames written and dropped since the last call, for the owner to add to its metrics."""
        written, dropped = self._counted
        self._counted = (self.written, self.dropped)
        return self.written - written, self.dropped - dropped


class UpstreamHooks(Protocol):
    def on_upstream_text(self, payload: bytes) -> bool:
        """Called with each whole text frame from upstream; return True to forward it to the client."""

    def on_upstream_close(self, payload: bytes) -> None:
        """Called with the payload of upstream's close frame (never forwarded: the relay decides)."""

    def on_upstream_ping(self, payload: bytes) -> None:
        """Called with each upstream ping; keepalive is per hop, so the relay answers it itself."""

    def on_upstream_frame(self, length: int) -> None:
        """Called after each whole binary frame (`length` payload bytes) from upstream has been relayed
        or parked (metrics, answered inputs)."""


@dataclass(eq=False)
class UpstreamToClients:
    """Scans the upstream byte stream and writes each frame's own bytes to every sink (cut-through)."""

    hooks: UpstreamHooks
    sinks: list[Sink] = field(default_factory=list)
    frames: int = 0  # whole frames relayed (for metrics)
    closed: bool = False
    # Set for a live session's driver: called with each whole frame relayed to the client (an output or a
    # forwarded text frame), as one bytes object holding its header and payload, for the viewers.
    tap: Callable[[bytes], None] | None = None
    on_error: Callable[[Exception], None] | None = None  # set: errors go here instead of the read callback
    _head: bytes = b""  # a header split across reads (at most 14 bytes + 1 payload byte)
    _left: int = 0  # bytes of the current frame still to come
    _hold: bytearray | None = None  # a text or control frame, kept whole for the hook
    _hold_header: int = 0
    _hold_opcode: int = 0
    _output: bool = False  # the current frame is a whole binary message (an output)
    _length: int = 0  # its payload length
    _tapping: bytearray | None = None
    _between: list[bytes] = field(default_factory=list)  # the relay's own frames, due at the next boundary
    _on_stop: Callable[[], None] | None = None

    @property
    def mid_frame(self) -> bool:
        """True while part of an upstream frame has gone out and the rest has not."""
        return self._left > 0 and self._hold is None

    def feed(self, data: bytes) -> None:
        """Relay one read. The common cases (a read that is exactly one output frame, or the middle of
        a frame going to one client) are handled inline: every Python call costs on this path."""
        try:
            if not self._head and len(self.sinks) == 1 and self.tap is None and not self.closed:
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
                                sink.written += 1
                                self.hooks.on_upstream_frame(length)
                            else:
                                self._left, self._output, self._length = whole - n, True, length
                            return
                elif self._hold is None and sink._parking is None and len(data) < self._left:
                    sink.transport.write(data)  # the middle of a frame this client is receiving
                    self._left -= len(data)
                    return
            self._feed(data)
        except Exception as exc:
            if self.on_error is None:
                raise
            self.closed = True  # nothing more is relayed once a side broke the protocol
            self.on_error(exc)

    def write_between_frames(self, frame: bytes) -> None:
        """Write a frame of the relay's own (a pong) to every sink without cutting into an upstream frame."""
        if self.mid_frame:
            self._between.append(frame)
            return
        for sink in self.sinks:
            sink.transport.write(frame)

    def stop_at_boundary(self, on_stop: Callable[[], None]) -> None:
        """Relay nothing after the current frame (if one is part-way out); then call `on_stop`, so the
        relay's own closing frames never land inside an upstream frame."""
        if self.mid_frame and not self.closed:
            self._on_stop = on_stop
            return
        self.closed = True
        on_stop()

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
                if self._tapping is not None:
                    self._tapping += data[pos : pos + take]
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
        if opcode >= OP_CLOSE or opcode == OP_TEXT:
            self._flush(data, pos)
            self._hold, self._hold_header, self._hold_opcode = bytearray(), size, opcode
            return
        whole_message = self._output = opcode == OP_BINARY and bool(first & FIN)
        self._length = length
        if whole_message and self.tap is not None:
            self._tapping = bytearray()
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
                sink.park(bytes(sink._parking))
                sink._parking = None
                if not sink.paused:  # drained while the frame was coming in
                    sink.resume()
            elif self._output:
                sink.written += 1
        if self._between:
            self._flush(data, pos)
            frames, self._between = self._between, []
            for frame in frames:
                self.write_between_frames(frame)
        if self._on_stop is not None:
            self._flush(data, pos)
            self.closed = True
            self._on_stop()
            return
        if self._hold is None:
            if self._tapping is not None and self.tap is not None:
                frame, self._tapping = bytes(self._tapping), None
                self.tap(frame)
            if self._output:
                self.hooks.on_upstream_frame(self._length)
            return
        frame, self._hold = bytes(self._hold), None
        payload = frame[self._hold_header :]
        if self._hold_opcode == OP_CLOSE:
            self._flush(data, pos)
            self.closed = True
            self.hooks.on_upstream_close(payload)
        elif self._hold_opcode == OP_PING:
            self.hooks.on_upstream_ping(payload)
        elif self._hold_opcode == OP_TEXT and self.hooks.on_upstream_text(payload):
            for sink in self.sinks:
                sink.transport.write(frame)
                sink.written += 1
            if self.tap is not None:
                self.tap(frame)

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

    def on_client_ping(self, payload: bytes) -> None:
        """Called with each client ping (unmasked); the relay answers it itself."""

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
    on_error: Callable[[Exception], None] | None = None  # set: errors go here instead of the read callback
    _buf: bytearray = field(default_factory=bytearray)
    _broken: bool = False  # a frame could not be parsed: frame boundaries are lost
    _discarding: bool = False  # after the relay's close: wait for the client's close, drop all else
    _fragments: list[bytes] | None = None  # unmasked parts of a fragmented input
    _fragmented_bytes: int = 0

    def feed(self, data: bytes) -> None:
        """Take one read. The usual case, a read that is exactly one masked binary frame of up to
        64 KiB, is handled inline (no copy, few calls); anything else goes the general way."""
        try:
            n = len(data)
            if not self._buf and n > 6 and data[0] == 0x82 and data[1] & 0x80 and not self.closed \
                    and self._fragments is None and not self._discarding:
                length, size = data[1] & 0x7F, 6
                if length == 126:
                    length, size = (data[2] << 8 | data[3]) if n > 8 else -1, 8
                if length + size == n and length <= self.max_frame_bytes:
                    self.hooks.on_input(unmask(data[size:], data[size - 4 : size]))
                    upstream = self.upstream
                    if upstream is None or self.upstream_paused:
                        self.send_input(data)
                    else:
                        upstream.write(data)
                        self.unanswered = data
                    return
            self._feed(data)
        except Exception as exc:
            self._broken = isinstance(exc, SpliceError)
            if self.on_error is None:
                raise
            self.closed = True  # nothing more is relayed once a side broke the protocol
            self.on_error(exc)

    def discard_until_close(self) -> bool:
        """After the relay's close frame, drop the client's frames but report its closing one, so the
        socket is not closed under data still in flight (a reset can cost the client our close frame).
        False when the client's frames can no longer be parsed."""
        if self._broken:
            return False
        self.closed, self._discarding, self._fragments = False, True, None
        return True

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
        try:
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
        finally:
            del buf[:pos]

    def _check(self, header: tuple[int, int, int, bool]) -> int:
        """Refuse a frame from its header alone (oversized, unmasked, reserved bits); return its length."""
        first, size, length, masked = header
        if length > self.max_frame_bytes:
            raise FrameTooLarge(f"frame is {length} bytes; this relay accepts at most {self.max_frame_bytes}")
        if not masked:
            raise SpliceError("client frames must be masked", upstream=False)
        if first & 0x70:
            raise SpliceError("reserved bits are set but no extension was negotiated", upstream=False)
        if first & 0x08 and (length > 125 or not first & FIN):
            raise SpliceError("control frames must be whole and at most 125 bytes", upstream=False)
        return size + length

    def _frame(self, first: int, frame: bytes, size: int) -> None:
        opcode = first & 0x0F
        if self._discarding:
            if opcode == OP_CLOSE:
                self.closed = True
                self.hooks.on_client_close(b"")
            return
        if opcode == OP_BINARY and self._fragments is None:
            if first & FIN:
                self.hooks.on_input(unmask(memoryview(frame)[size:], frame[size - 4 : size]))
                self.send_input(frame)
            else:
                self._fragments, self._fragmented_bytes = [], 0
                self._fragment(frame, size)
        elif opcode == OP_CONT and self._fragments is not None:
            self._fragment(frame, size)
            if first & FIN:
                self._reframe(b"".join(self._fragments))
        elif opcode == OP_PING:
            self.hooks.on_client_ping(unmask(memoryview(frame)[size:], frame[size - 4 : size]))
        elif opcode == OP_PONG:
            pass  # the relay sends no pings of its own on a spliced connection
        elif opcode == OP_CLOSE:
            self._check_close(unmask(memoryview(frame)[size:], frame[size - 4 : size]))
            self.closed = True
            self.hooks.on_client_close(unmask(memoryview(frame)[size:], frame[size - 4 : size]))
        elif opcode == OP_TEXT:
            raise InvalidData("expected a binary msgpack frame, got a text frame")
        elif opcode == OP_CONT:
            raise SpliceError("a continuation frame came with no message to continue", upstream=False)
        else:
            raise SpliceError(f"unexpected frame (opcode {opcode}) in the middle of a message", upstream=False)

    @staticmethod
    def _check_close(payload: bytes) -> None:
        """RFC 6455 section 7.4: no code, or a code a peer may send, then a UTF-8 reason."""
        if not payload:
            return
        if len(payload) == 1:
            raise SpliceError("a close frame cannot carry one byte", upstream=False)
        (code,) = struct.unpack_from(">H", payload)
        if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
            raise SpliceError(f"close code {code} is not one a client may send", upstream=False)
        try:
            payload[2:].decode()
        except UnicodeDecodeError:
            raise InvalidData("the close reason is not valid UTF-8") from None

    def _fragment(self, frame: bytes, size: int) -> None:
        assert self._fragments is not None
        self._fragmented_bytes += len(frame) - size
        if self._fragmented_bytes > self.max_frame_bytes:
            raise FrameTooLarge(f"message is over {self.max_frame_bytes} bytes; this relay accepts at most that")
        self._fragments.append(unmask(memoryview(frame)[size:], frame[size - 4 : size]))

    def _reframe(self, payload: bytes) -> None:
        """A fragmented input is checked whole and sent upstream as one frame with a fresh mask."""
        self._fragments = None
        self.hooks.on_input(payload)
        self.send_input(masked_frame(OP_BINARY, payload))

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
