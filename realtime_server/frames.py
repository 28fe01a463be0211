"""The WebSocket frame codec (RFC 6455), sans I/O: what both directions of the splice agree on.

Modelled on websockets' `frames.py`: one incremental header reader (`read_header`), one check of
what a frame may be given the frames before it (`Framing.check`: reserved bits, opcodes, control
frames, fragmentation, masking direction, the size cap), UTF-8 of text and close reasons
(`check_text`, `check_close`), and masking through websockets' `apply_mask` (its C version when
built, else its own pure-Python fallback, as websockets itself picks).

The splice reads headers only: payloads are relayed as received, so nothing here copies one. A
peer that breaks a rule gets a `RelayError` naming the rule: a client's is refused with its own
code (`ProtocolViolation`, `FrameTooLarge`, `BadFrame`), an upstream's is an `UpstreamError`,
because nothing malformed from upstream may reach a browser.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

from .protocol import BadFrame, FrameTooLarge, ProtocolViolation, RelayError, UpstreamError

try:
    from websockets.speedups import apply_mask as apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask as apply_mask

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
FIN = 0x80
RSV = 0x70
MAX_CONTROL = 125
# Close codes a peer may send (RFC 6455 section 7.4; 1004-1006 and 1015 are never on the wire).
_PEER_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


class Header(NamedTuple):
    """A frame's header as read off the wire: what the splice needs to find and check the frame."""

    first_byte: int  # FIN, the reserved bits and the opcode, as sent
    size: int  # bytes of the header itself, the masking key included: the payload starts here
    payload_length: int
    masked: bool


# A NamedTuple's own `__new__` is a Python function; `tuple.__new__` builds the same value without it
# (about 0.1 µs less a header, in process), and `read_header` runs at least twice per round trip.
_new_header = tuple.__new__


def read_header(buf: bytes | bytearray, pos: int, end: int) -> Header | None:
    """The header of the frame at `buf[pos:end]`, or None until all of it has arrived.

    Incremental: called again with more bytes, it reads the same header; it never reads a payload.
    """
    if end - pos < 2:
        return None
    second = buf[pos + 1]
    length = second & 0x7F
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
    masked = second >= 0x80
    if masked:
        size += 4
    if end - pos < size:
        return None
    return _new_header(Header, (buf[pos], size, length, masked))


def frame_header(opcode: int, length: int, mask: bytes | None = None, fin: bool = True) -> bytes:
    """A frame header (the relay's own frames and tests; relayed frames keep theirs)."""
    first = (FIN if fin else 0) | opcode
    bit = 0x80 if mask else 0
    if length < 126:
        head = struct.pack(">BB", first, bit | length)
    elif length < 1 << 16:
        head = struct.pack(">BBH", first, bit | 126, length)
    else:
        head = struct.pack(">BBQ", first, bit | 127, length)
    return head + (mask or b"")


def unmask(payload: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR `payload` with the 4-byte masking key (RFC 6455 section 5.3); masking and unmasking are one."""
    return apply_mask(payload, key)


def masked_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A whole frame as a client must send it: masked with a fresh random key."""
    mask = os.urandom(4)
    return frame_header(opcode, len(payload), mask, fin) + apply_mask(payload, mask)


def check_text(payload: bytes, *, upstream: bool = False) -> None:
    """A text message must be valid UTF-8 (RFC 6455 section 8.1)."""
    try:
        payload.decode()
    except UnicodeDecodeError:
        raise (UpstreamError if upstream else BadFrame)(_blame("text is not valid UTF-8", upstream)) from None


def check_close(payload: bytes, *, upstream: bool = False) -> int:
    """A close frame's code (1005 when it carries none): a code a peer may send, then a UTF-8 reason."""
    if not payload:
        return 1005
    violation: type[RelayError] = UpstreamError if upstream else ProtocolViolation
    if len(payload) == 1:
        raise violation(_blame("a close frame cannot carry one byte", upstream))
    code: int = struct.unpack_from(">H", payload)[0]
    if code not in _PEER_CLOSE_CODES and not 3000 <= code <= 4999:
        raise violation(_blame(f"close code {code} is not one a peer may send", upstream))
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise (UpstreamError if upstream else BadFrame)(_blame("the close reason is not valid UTF-8", upstream)) \
            from None
    return code


def _blame(reason: str, upstream: bool) -> str:
    return f"upstream broke the WebSocket protocol: {reason}" if upstream else reason


@dataclass(eq=False)
class Framing:
    """What may come next on one direction of a connection: which frames, masked or not, how large.

    `check` refuses a frame from its header alone and changes nothing, so it can be asked again as
    more bytes of the frame arrive; `advance` then records the frame (a fragmented message begun,
    continued or ended, in `fragmented_opcode`). Control frames may come between fragments and change
    nothing.

    Args:
        masked: frames in this direction must be masked (from a client) or must not be (from a server).
        max_bytes: cap on a data message, summed over its fragments.
        max_text: cap on a text message (held whole for the relay to read); `max_bytes` if None.
    """

    masked: bool
    max_bytes: int
    max_text: int | None = None
    fragmented_opcode: int | None = None  # OP_TEXT or OP_BINARY while a fragmented message is under way
    fragmented_bytes: int = 0  # its payload so far

    @property
    def upstream(self) -> bool:
        return not self.masked

    def check(self, first: int, length: int, masked: bool) -> int:
        """Raise if this frame may not come now; return its opcode."""
        if masked is not self.masked:
            self._refuse("client frames must be masked" if self.masked
                         else "server frames must not be masked")
        if first & RSV:
            self._refuse("reserved bits are set but no extension was negotiated")
        opcode = first & 0x0F
        if opcode >= OP_CLOSE:
            if opcode > OP_PONG:
                self._refuse(f"opcode {opcode:#x} is reserved")
            if length > MAX_CONTROL or not first & FIN:
                self._refuse("control frames must be whole and at most 125 bytes")
            return opcode
        if opcode == OP_CONT:
            if self.fragmented_opcode is None:
                self._refuse("a continuation frame came with no message to continue")
            total, kind = self.fragmented_bytes + length, self.fragmented_opcode
        elif opcode <= OP_BINARY:
            if self.fragmented_opcode is not None:
                self._refuse(f"a new message (opcode {opcode:#x}) began in the middle of a fragmented one")
            total, kind = length, opcode
        else:
            self._refuse(f"opcode {opcode:#x} is reserved")
        cap = self.max_bytes if kind == OP_BINARY or self.max_text is None else self.max_text
        if total > cap:
            self._too_large(total, length, cap, kind)
        return opcode

    def advance(self, first: int, length: int) -> None:
        """Record a frame `check` let through: a data frame begins, continues or ends a message."""
        opcode = first & 0x0F
        if opcode >= OP_CLOSE:
            return
        if opcode != OP_CONT:
            self.fragmented_opcode, self.fragmented_bytes = opcode, 0
        self.fragmented_bytes += length
        if first & FIN:
            self.fragmented_opcode, self.fragmented_bytes = None, 0

    def _refuse(self, reason: str) -> NoReturn:
        raise UpstreamError(_blame(reason, True)) if self.upstream else ProtocolViolation(reason)

    def _too_large(self, total: int, length: int, cap: int, kind: int) -> NoReturn:
        what = "text message" if kind == OP_TEXT else "message"
        if self.upstream:
            raise UpstreamError(f"upstream sent a {what} over {cap} bytes, more than the relay holds")
        if total == length:
            raise FrameTooLarge(f"frame is {length} bytes; this relay accepts at most {cap}")
        raise FrameTooLarge(f"message is over {cap} bytes; this relay accepts at most that")
