"""Client -> upstream: each input unmasked once for its checks, then sent upstream under the relay's own mask.

A client's masked input frame is unmasked once for the relay's checks (the `on_input` hook:
limits, a msgpack map or a JSON object), then forwarded upstream as the client framed it, one
frame with its opcode kept, masked with a fresh key of the relay's own: on that hop the relay is
the client, RFC 6455 asks for a key the application cannot predict, and the browser's would let a
script choose the bytes on the wire. A fragmented input is checked whole and sent on as one frame.

Every header goes through the codec's `Framing.check` as soon as it is whole, so a frame over the
cap is refused before its payload is read, whatever the read boundaries. Newest input wins while
upstream is busy: one input waits and a newer one replaces it. Pings go to a hook (keepalive is per
hop); the client's close goes to a hook, and after the relay's own close the client's frames are
dropped until its closing frame comes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from os import urandom
from typing import Protocol

from ..frames import (
    FIN,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    Framing,
    apply_mask,
    check_close,
    masked_frame,
    read_header,
)
from ..protocol import FrameTooLarge, ProtocolViolation, RelayError
from .sink import Writer


class ClientHooks(Protocol):
    """What the connection does with the client's frames (`relay.Relay`, `sessions.Viewer`); called inside
    read callbacks, so a hook sets state and returns."""

    def on_input(self, payload: bytes, text: bool) -> None:
        """Check one unmasked input (limits, a msgpack map or, `text` or not, a JSON object); raise to refuse
        it and end the connection."""

    def on_client_ping(self, payload: bytes) -> None:
        """Called with each client ping (unmasked); the relay answers it itself."""

    def on_client_close(self, payload: bytes) -> None:
        """Called with the payload of the client's close frame."""


@dataclass(eq=False)
class ClientToUpstream:
    """Parses the client's masked frames, checks each input, forwards it upstream as the client framed it
    (one frame, its opcode kept) under a fresh mask.

    Every header goes through the codec's `Framing.check` as soon as it is whole, so a frame over the
    cap is refused before its payload is read, whatever the read boundaries."""

    hooks: ClientHooks
    max_frame_bytes: int
    upstream: Writer | None = None
    upstream_paused: bool = False
    pending: bytes | None = None  # newest input not yet sent (newest input wins)
    unanswered: bytes | None = None  # the last input sent, framed as it went upstream, until an output comes
    dropped: int = 0  # inputs replaced by a newer one while upstream was busy
    closed: bool = False
    on_error: Callable[[Exception], None] | None = None  # set: errors go here instead of the read callback
    _unparsed: bytearray = field(default_factory=bytearray)  # the start of a frame whose end has not come
    # Frame boundaries are lost, or the client's closing frame came malformed: no closing frame is to come.
    _no_close_to_come: bool = False
    _discarding: bool = False  # after the relay's close: wait for the client's close, drop all else
    _input_fragments: list[bytes] | None = None  # unmasked parts of a fragmented input
    _fragmented_opcode: int = OP_BINARY  # its opcode

    def __post_init__(self) -> None:
        self.framing = Framing(True, self.max_frame_bytes)

    def feed(self, data: bytes) -> None:
        """Take one read: the frames it completes are handled, the rest waits for the next read."""
        try:
            self._feed(data)
        except Exception as exc:
            self._no_close_to_come = self._no_close_to_come or isinstance(exc, ProtocolViolation | FrameTooLarge)
            if self.on_error is None:
                raise
            self.closed = True  # nothing more is relayed once a side broke the protocol
            self.on_error(exc)

    def discard_until_close(self) -> bool:
        """After the relay's close frame, drop the client's frames but report its closing one, so the
        socket is not closed under data still in flight (a reset can cost the client our close frame).
        False when the client's frames can no longer be parsed."""
        if self._no_close_to_come:
            return False
        self.closed, self._discarding, self._input_fragments = False, True, None
        return True

    def _feed(self, data: bytes) -> None:
        """Handle each whole frame in the bytes so far; keep the start of one whose end has not come."""
        if self.closed:
            return
        buf = self._unparsed
        if not buf:  # one read holding exactly one whole frame (the usual input): no copy
            header = read_header(data, 0, len(data))
            if header is not None:
                first, size, length, masked = header
                self.framing.check(first, length, masked)
                if size + length == len(data):
                    self._handle_frame(first, data, size, length)
                    return
        buf += data
        pos, end = 0, len(buf)
        try:
            while not self.closed:
                header = read_header(buf, pos, end)
                if header is None:
                    break
                first, size, length, masked = header
                self.framing.check(first, length, masked)
                if end - pos < size + length:
                    break
                frame = bytes(buf[pos : pos + size + length])
                pos += size + length
                self._handle_frame(first, frame, size, length)
        finally:
            del buf[:pos]

    def _handle_frame(self, first: int, frame: bytes, size: int, length: int) -> None:
        """One whole frame that `Framing.check` let through."""
        self.framing.advance(first, length)
        opcode = first & 0x0F
        if self._discarding:
            if opcode == OP_CLOSE:
                self.closed = True
                self.hooks.on_client_close(b"")
            return
        if opcode == OP_BINARY and first & FIN:  # an input, the hot path: `_unmasked` inlined
            payload = apply_mask(memoryview(frame)[size:], frame[size - 4 : size])
            self.hooks.on_input(payload, False)
            # On this hop the relay is the client: its own fresh key, never one the client chose (RFC 6455 5.3).
            mask = urandom(4)
            self.send_input(b"".join((frame[: size - 4], mask, apply_mask(payload, mask))))
        elif opcode == OP_TEXT and first & FIN:  # a JSON input (an app or a client that speaks JSON)
            payload = _unmasked(frame, size)
            self.hooks.on_input(payload, True)
            self.send_input(masked_frame(OP_TEXT, payload))
        elif opcode <= OP_BINARY and opcode != OP_CONT:
            self._input_fragments, self._fragmented_opcode = [_unmasked(frame, size)], opcode
        elif opcode == OP_CONT and self._input_fragments is not None:  # `check` allows it only inside a message
            self._input_fragments.append(_unmasked(frame, size))
            if first & FIN:
                self._reframe(b"".join(self._input_fragments))
        elif opcode == OP_PING:
            self.hooks.on_client_ping(_unmasked(frame, size))
        elif opcode == OP_CLOSE:
            payload = _unmasked(frame, size)
            try:
                check_close(payload)
            except RelayError:
                self._no_close_to_come = True  # the client's closing frame is in, malformed: no other will come
                raise
            self.closed = True
            self.hooks.on_client_close(payload)
        # A pong: the relay sends no pings of its own on a spliced connection.

    def _reframe(self, payload: bytes) -> None:
        """A fragmented input is checked whole and sent upstream as one frame with a fresh mask."""
        self._input_fragments = None
        self.hooks.on_input(payload, self._fragmented_opcode == OP_TEXT)
        self.send_input(masked_frame(self._fragmented_opcode, payload))

    def send_input(self, frame: bytes) -> None:
        """Write an input frame upstream now, or, while upstream is busy or between legs, let it wait
        (replacing the one waiting: newest input wins)."""
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
        """Upstream drained: the waiting input goes out."""
        self.upstream_paused = False
        if self.pending is not None:
            frame, self.pending = self.pending, None
            self.send_input(frame)


def _unmasked(frame: bytes, size: int) -> bytes:
    """The payload of a whole client frame whose header is `size` bytes (its masking key the last four)."""
    return apply_mask(memoryview(frame)[size:], frame[size - 4 : size])
