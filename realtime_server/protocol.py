"""fal's realtime wire protocol as the relay speaks it: frames, error codes and close codes.

Binary frames are msgpack maps (images as `bin`); text frames are JSON control messages,
`{"type": "x-fal-error", "error": CODE, "reason": TEXT}` and `{"type": "x-fal-message", ...}`.
Every error the relay raises is a `RelayError` carrying its x-fal-error code, a close code and a
reason a person can act on; `app.py` turns it into an error frame and a close, once.
"""

from __future__ import annotations

import enum
import json
import re
from typing import Any

import msgpack


class CloseCode(enum.IntEnum):
    """WebSocket close codes: websockets' names for 1000-1014, our own conditions in 4000-4999."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TICKET_EXPIRED = 4001
    SESSION_EXPIRED = 4002
    IDLE_TIMEOUT = 4003
    SESSION_ENDED = 4004  # no longer sent (viewers outlive their driver); older relays' normal end


class ErrorCode(enum.StrEnum):
    """The closed list of `error` values in x-fal-error frames the relay sends itself."""

    UNAUTHORIZED = "UNAUTHORIZED"
    TICKET_EXPIRED = "TICKET_EXPIRED"
    ORIGIN_NOT_ALLOWED = "ORIGIN_NOT_ALLOWED"
    APP_NOT_ALLOWED = "APP_NOT_ALLOWED"
    BAD_REQUEST = "BAD_REQUEST"
    BAD_FRAME = "BAD_FRAME"
    FRAME_TOO_LARGE = "FRAME_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    CLIENT_TOO_SLOW = "CLIENT_TOO_SLOW"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    VIEWER_READ_ONLY = "VIEWER_READ_ONLY"
    SESSION_BUSY = "SESSION_BUSY"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    TIMEOUT = "TIMEOUT"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class RelayError(Exception):
    """Base of every error the relay answers with an x-fal-error frame and a close."""

    error: ErrorCode = ErrorCode.INTERNAL_ERROR
    close_code: CloseCode = CloseCode.INTERNAL_ERROR

    def __init__(self, reason: str | None = None) -> None:
        self.reason = one_line(reason or "")
        super().__init__(f"{self.error}: {self.reason}")

    def frame(self) -> str:
        """The text frame that tells the client, sent just before the close."""
        return error_frame(self.error, self.reason)


class Unauthorized(RelayError):
    """Raised when a handshake carries no valid ticket or key."""

    error, close_code = ErrorCode.UNAUTHORIZED, CloseCode.POLICY_VIOLATION


class TicketExpired(RelayError):
    """Raised when a ticket's `exp` has passed; the client should fetch a new one."""

    error, close_code = ErrorCode.TICKET_EXPIRED, CloseCode.TICKET_EXPIRED


class OriginNotAllowed(RelayError):
    """Raised when a browser handshake comes from an origin not in RELAY_ALLOWED_ORIGINS."""

    error, close_code = ErrorCode.ORIGIN_NOT_ALLOWED, CloseCode.POLICY_VIOLATION


class AppNotAllowed(RelayError):
    """Raised when the app is unknown, not in the relay's allowlist, or not in the ticket."""

    error, close_code = ErrorCode.APP_NOT_ALLOWED, CloseCode.POLICY_VIOLATION


class BadRequest(RelayError):
    """Raised when handshake parameters are malformed (e.g. `max_buffering` out of range)."""

    error, close_code = ErrorCode.BAD_REQUEST, CloseCode.POLICY_VIOLATION


class BadFrame(RelayError):
    """Raised when a client frame is not a msgpack map of well-typed inputs."""

    error, close_code = ErrorCode.BAD_FRAME, CloseCode.INVALID_DATA


class ProtocolViolation(RelayError):
    """Raised when a client's frames break RFC 6455 (unmasked, reserved bits, a bad close, ...)."""

    error, close_code = ErrorCode.BAD_FRAME, CloseCode.PROTOCOL_ERROR


class FrameTooLarge(RelayError):
    """Raised when a client frame exceeds RELAY_MAX_FRAME_BYTES."""

    error, close_code = ErrorCode.FRAME_TOO_LARGE, CloseCode.MESSAGE_TOO_BIG


class RateLimited(RelayError):
    """Raised when a client sends inputs faster than RELAY_MAX_INPUTS_PER_SECOND allows."""

    error, close_code = ErrorCode.RATE_LIMITED, CloseCode.TRY_AGAIN_LATER


class ClientTooSlow(RelayError):
    """Raised when a client has read nothing for RELAY_SEND_TIMEOUT while frames wait for it. The
    error and the close go out behind what it has not read; a client that reads again gets them."""

    error, close_code = ErrorCode.CLIENT_TOO_SLOW, CloseCode.TRY_AGAIN_LATER


class TooManyConnections(RelayError):
    """Raised when a user, or the relay as a whole, is at its connection limit."""

    error, close_code = ErrorCode.TOO_MANY_CONNECTIONS, CloseCode.TRY_AGAIN_LATER


class ViewerReadOnly(RelayError):
    """Raised when a live-session viewer sends an input; only the driver may."""

    error, close_code = ErrorCode.VIEWER_READ_ONLY, CloseCode.POLICY_VIOLATION


class SessionBusy(RelayError):
    """Raised when a second driver tries to open a live session that already has one."""

    error, close_code = ErrorCode.SESSION_BUSY, CloseCode.TRY_AGAIN_LATER


class UpstreamUnavailable(RelayError):
    """Raised when the upstream realtime app refuses the connection or does not answer in time."""

    error, close_code = ErrorCode.UPSTREAM_UNAVAILABLE, CloseCode.TRY_AGAIN_LATER


class UpstreamError(RelayError):
    """Raised when the upstream dies mid-stream or sends something that is not a frame."""

    error, close_code = ErrorCode.UPSTREAM_ERROR, CloseCode.BAD_GATEWAY


class UpstreamReportedError(UpstreamError):
    """Raised when the upstream app sends its own x-fal-error; the client gets that frame unchanged."""

    close_code = CloseCode.INTERNAL_ERROR

    def __init__(self, frame: str, payload: dict[str, object]) -> None:
        super().__init__(str(payload.get("reason") or "upstream reported an error"))
        self._frame = frame

    def frame(self) -> str:
        return self._frame


class IdleTimeout(RelayError):
    """Raised when a client sends nothing for RELAY_IDLE_TIMEOUT seconds."""

    error, close_code = ErrorCode.TIMEOUT, CloseCode.IDLE_TIMEOUT


class SessionExpired(RelayError):
    """Raised when a connection outlives RELAY_MAX_SESSION_SECONDS."""

    error, close_code = ErrorCode.SESSION_EXPIRED, CloseCode.SESSION_EXPIRED


_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with its control characters escaped (a newline as `\\n`): a reason can come from upstream
    (a model's multi-line error), and each log line must stay one event."""
    return _LINE_BREAKING.sub(lambda match: repr(match.group())[1:-1], text)


def error_frame(error: str, reason: str) -> str:
    """An x-fal-error text frame, as fal's own servers send it."""
    return json.dumps({"type": "x-fal-error", "error": error, "reason": reason}, separators=(",", ":"))


def message_frame(action: str, **fields: Any) -> str:
    """An x-fal-message text frame (control information that is not an error)."""
    return json.dumps({"type": "x-fal-message", "action": action, **fields}, separators=(",", ":"))


def parse_control(text: str) -> dict[str, Any] | None:
    """Decode an upstream text frame if it is an x-fal control message, else None."""
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    if isinstance(payload, dict) and payload.get("type") in ("x-fal-error", "x-fal-message"):
        return payload
    return None


def close_reason(reason: str) -> str:
    """A close reason must fit in 123 bytes of UTF-8."""
    encoded = reason.encode()
    if len(encoded) <= 123:
        return reason
    return encoded[:120].decode(errors="ignore") + "..."


# Input fields shared by fal's realtime image apps, with the types they must have.
_INPUT_TYPES: dict[str, tuple[type, ...]] = {
    "prompt": (str,),
    "negative_prompt": (str,),
    "image_bytes": (bytes,),
    "image_url": (str,),
    "seed": (int,),
    "strength": (int, float),
    "guidance_scale": (int, float),
    "num_inference_steps": (int,),
    "num_images": (int,),
    "width": (int,),
    "height": (int,),
    "enable_safety_checks": (bool,),
    "sync_mode": (bool,),
}
_TYPE_NAMES = {str: "a string", bytes: "binary (msgpack bin)", int: "an integer", float: "a number", bool: "a boolean"}
_MAX_DEPTH = 16


def check_input(frame: bytes, max_bytes: int, *, text: bool = False) -> dict[str, Any]:
    """Decode a client input frame just far enough to enforce limits and field types.

    An input is a msgpack map, or a JSON object for apps that speak JSON: fal's SDK lets an app declare
    `content_type` and `decode_message`, and hands it binary frames; fal-js's `encodeMessage` sends a
    text frame. A binary JSON object is told from msgpack by its first byte (`{`, which no msgpack map
    starts with). The frame itself is forwarded upstream as sent; the decoded map is only inspected.
    """
    if len(frame) > max_bytes:
        raise FrameTooLarge(f"frame is {len(frame)} bytes; this relay accepts at most {max_bytes}")
    if text or frame[:1] == b"{":
        payload = _json_input(frame)
    else:
        try:
            payload = msgpack.unpackb(frame, raw=False, strict_map_key=True)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
            raise BadFrame(f"frame is not valid msgpack ({type(exc).__name__})") from None
        if not isinstance(payload, dict):
            raise BadFrame(f"frame must be a msgpack map of inputs, got {type(payload).__name__}")
    if _depth(payload) > _MAX_DEPTH:
        raise BadFrame(f"frame nests deeper than {_MAX_DEPTH} levels")
    for name, value in payload.items():
        expected = _INPUT_TYPES.get(name)
        if expected is None or value is None:
            continue
        if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
            raise BadFrame(f"field '{name}' must be {_TYPE_NAMES[expected[-1]]}, got {type(value).__name__}")
    return payload


def _json_input(frame: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(frame.decode())  # strict UTF-8, as a text frame must be
    except RecursionError:
        raise BadFrame(f"frame nests deeper than {_MAX_DEPTH} levels") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise BadFrame(f"frame is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise BadFrame(f"frame must be a JSON object of inputs, got {type(payload).__name__}")
    return payload


def _depth(value: Any, level: int = 1) -> int:
    """How deep `value` nests, a scalar counting one level; recursion only into containers."""
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return level
    deepest = level
    for child in children:
        depth = _depth(child, level + 1) if isinstance(child, dict | list) else level + 1
        if depth > deepest:
            deepest = depth
    return deepest
