"""The frame codec at every TCP split: any valid stream, fed in any partition of reads, is relayed
exactly as when fed whole, both directions; a header over the cap is refused from the header alone.

Streams are drawn by hypothesis (derandomized, so CI is reproducible): data frames in all three
length encodings (7-bit, 16-bit, 64-bit), fragmented messages with control frames between their
fragments, random masks. Each stream is fed whole and in a drawn partition; both runs must give the
same bytes to each side and the same hook events, and those must be what the stream says.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_server import frames, protocol, splice

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLIENT_CAP = 70_000  # over 65,535, so client frames with 64-bit lengths fit under it
# Payload lengths around each length encoding's edges, and some in between.
LENGTHS = st.one_of(st.sampled_from([1, 2, 125, 126, 127, 65_535, 65_536, 65_537]), st.integers(1, 300),
                    st.integers(126, 4000), st.integers(65_536, CLIENT_CAP))
CONTROL = st.binary(max_size=frames.MAX_CONTROL)


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


@dataclass
class Events:
    """Every hook call of both directions, in order."""

    log: list[tuple[str, Any]] = field(default_factory=list)

    def on_upstream_text(self, payload: bytes) -> bool:
        self.log.append(("text", payload))
        return True

    def on_upstream_close(self, payload: bytes) -> None:
        self.log.append(("close", payload))

    def on_upstream_ping(self, payload: bytes) -> None:
        self.log.append(("ping", payload))

    def on_upstream_frame(self, length: int) -> None:
        self.log.append(("output", length))

    def on_input(self, payload: bytes, text: bool = False) -> None:
        self.log.append(("input", payload))

    def on_client_ping(self, payload: bytes) -> None:
        self.log.append(("ping", payload))

    def on_client_close(self, payload: bytes) -> None:
        self.log.append(("close", payload))


def frame(first: int, payload: bytes, mask: bytes | None) -> bytes:
    """A frame with any first byte; masked with `mask` when given."""
    head = frames.frame_header(first & 0x0F, len(payload), mask, fin=bool(first & frames.FIN))
    return head + (frames.unmask(payload, mask) if mask else payload)


def partition(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % len(data) for c in cuts} - {0})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@st.composite
def messages(draw: st.DrawFn, masked: bool) -> tuple[list[bytes], list[tuple[str, Any]], list[tuple[str, bytes]]]:
    """A valid stream: (frames, the hook events it must cause, what a client's must forward upstream:
    whole inputs as framed, `("frame", bytes)`, fragmented ones reframed, `("payload", bytes)`)."""
    mask = (lambda: draw(st.binary(min_size=4, max_size=4))) if masked else (lambda: None)
    out: list[bytes] = []
    events: list[tuple[str, Any]] = []
    forwarded: list[tuple[str, bytes]] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["data", "data", "fragmented", "ping", "pong"] + ([] if masked else ["text"])))
        if kind in ("ping", "pong"):
            payload = draw(CONTROL)
            out.append(frame(frames.FIN | (frames.OP_PING if kind == "ping" else frames.OP_PONG), payload, mask()))
            if kind == "ping":
                events.append(("ping", payload))
            continue
        length = draw(LENGTHS) if kind != "text" else draw(st.integers(0, 3000))
        filler = draw(st.integers(0, 255))
        if kind == "text":
            payload = (draw(st.text(max_size=40)) * (1 + length // 40)).encode()[:length]
            payload = payload.decode(errors="ignore").encode()  # whole characters only
            opcode = frames.OP_TEXT
        else:
            payload = bytes([0x80 | filler % 16]) + bytes([filler]) * (length - 1)  # starts like a msgpack map
            opcode = frames.OP_BINARY
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(payload) - 1)), max_size=3))))
        if kind == "data" and opcode == frames.OP_BINARY or not cuts or len(payload) < 2:
            out.append(frame(frames.FIN | opcode, payload, mask()))
            parts = [payload]
        else:
            parts = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
            for i, part in enumerate(parts):
                first = (opcode if i == 0 else frames.OP_CONT) | (frames.FIN if i == len(parts) - 1 else 0)
                out.append(frame(first, part, mask()))
                if i < len(parts) - 1 and draw(st.booleans()):  # a control frame between fragments
                    ping = draw(CONTROL)
                    out.append(frame(frames.FIN | frames.OP_PING, ping, mask()))
                    events.append(("ping", ping))
        if masked:
            events.append(("input", payload))
            forwarded.append(("frame", out[-1]) if len(parts) == 1 else ("payload", payload))
        elif opcode == frames.OP_TEXT:
            events.append(("text", payload))
        else:  # an output, whole or in fragments, counted once it is whole
            events.append(("output", len(payload)))
    if draw(st.booleans()):
        code = draw(st.sampled_from([1000, 1001, 1011, 3000, 4999]))
        reason = draw(st.text(max_size=20)).encode()
        out.append(frame(frames.FIN | frames.OP_CLOSE, struct.pack(">H", code) + reason, mask()))
        events.append(("close", struct.pack(">H", code) + reason))
    return out, events, forwarded


def run_upstream(pieces: list[bytes], *, tap: bool, viewers: int) -> tuple[list[bytes], list[Any], list[bytes]]:
    events, sinks, tapped = Events(), [splice.Sink(Transport()) for _ in range(1 + viewers)], []
    down = splice.UpstreamToClients(events, sinks, tap=tapped.append if tap else None)
    for piece in pieces:
        down.feed(piece)
    outs = [s.transport.data for s in sinks]  # type: ignore[attr-defined]
    assert all(o == outs[0] for o in outs)
    return outs, events.log, tapped


def run_client(pieces: list[bytes], cap: int = CLIENT_CAP) -> tuple[list[bytes], list[Any]]:
    events, upstream = Events(), Transport()
    up = splice.ClientToUpstream(events, cap, upstream=upstream)
    for piece in pieces:
        up.feed(piece)
    return upstream.writes, events.log


def _frames_of(data: bytes) -> list[bytes]:
    """Split a stream into its frames, for the model's forwarded list."""
    out, pos = [], 0
    while pos < len(data):
        header = frames.read_header(data, pos, len(data))
        assert header is not None
        out.append(data[pos : pos + header[1] + header[2]])
        pos += header[1] + header[2]
    return out


@settings(FUZZ, max_examples=250)
@given(messages(masked=False), st.lists(st.integers(1, 1 << 20), max_size=40), st.booleans(), st.integers(0, 1))
def test_upstream_stream_is_relayed_the_same_at_every_split(case, cuts, tap, viewers) -> None:
    """Upstream to client: any partition of reads gives the bytes, hook events and tapped frames of one read."""
    stream_frames, events, _ = case
    stream = b"".join(stream_frames)
    whole = run_upstream([stream], tap=tap, viewers=viewers)
    split = run_upstream(partition(stream, cuts), tap=tap, viewers=viewers)
    assert split == whole
    assert whole[1] == events
    # Forwarded: every binary frame as it came, each text message as one frame; no control frame.
    assert _frames_of(whole[0][0]) == _merge(stream_frames, [e[1] for e in events if e[0] == "text"])
    if tap:  # each message as the client got it: a fragmented output's data frames as one object
        assert whole[2] == _messages_of(_frames_of(whole[0][0]))


def _messages_of(forwarded: list[bytes]) -> list[bytes]:
    """Each whole message among the frames a client got, its frames joined (control frames are never forwarded)."""
    out, message = [], b""
    for f in forwarded:
        message += f
        if f[0] & frames.FIN:
            out.append(message)
            message = b""
    return out


def _merge(stream_frames: list[bytes], texts: list[bytes]) -> list[bytes]:
    """What the client must get: binary frames as they came, each text message as one frame, in order."""
    out, message, texts = [], None, list(texts)
    for f in stream_frames:
        opcode = f[0] & 0x0F
        if opcode >= frames.OP_CLOSE:
            continue
        if opcode != frames.OP_CONT:
            message = opcode
        if message == frames.OP_BINARY:
            out.append(f)
        elif f[0] & frames.FIN:
            text = texts.pop(0)
            out.append(frames.frame_header(frames.OP_TEXT, len(text)) + text)
    return out


@settings(FUZZ, max_examples=250)
@given(messages(masked=True), st.lists(st.integers(1, 1 << 20), max_size=40))
def test_client_stream_is_relayed_the_same_at_every_split(case, cuts) -> None:
    """Client to upstream: any partition of reads gives the inputs, events and upstream frames of one read."""
    stream_frames, events, forwarded = case
    stream = b"".join(stream_frames)
    whole_writes, whole_events = run_client([stream])
    split_writes, split_events = run_client(partition(stream, cuts))
    assert whole_events == split_events == events
    assert len(whole_writes) == len(split_writes) == len(forwarded)
    for whole, split, (kind, want) in zip(whole_writes, split_writes, forwarded, strict=True):
        if kind == "frame":  # a whole input: its header as the client framed it, under the relay's own mask
            _, size, _, _ = frames.read_header(want, 0, len(want)) or (0, 0, 0, False)
            head, client_mask, payload = want[: size - 4], want[size - 4 : size], frames.unmask(want[size:],
                                                                                               want[size - 4 : size])
            assert whole[: size - 4] == split[: size - 4] == head
            assert client_mask not in (whole[size - 4 : size], split[size - 4 : size])
        else:  # a fragmented input: one frame with a fresh mask, the same payload
            payload = want
        for got in (whole, split):
            first, size, length, masked = frames.read_header(got, 0, len(got)) or (0, 0, 0, False)
            assert first == 0x82 and masked and size + length == len(got)
            assert frames.unmask(got[size:], got[size - 4 : size]) == payload


def _oversized_header(opcode: int, declared: int, mask: bytes | None, fin: bool = True) -> bytes:
    return frames.frame_header(opcode, declared, mask, fin=fin)


@settings(FUZZ, max_examples=300)
@given(messages(masked=True), st.integers(CLIENT_CAP + 1, 2**63 - 1), st.binary(max_size=40),
       st.lists(st.integers(1, 1 << 20), max_size=30), st.binary(min_size=4, max_size=4), st.booleans())
def test_a_client_header_over_the_cap_is_refused_from_the_header(case, declared, tail, cuts, mask, fragment) -> None:
    """Whatever the read boundaries: FRAME_TOO_LARGE as soon as the header is whole, nothing of it forwarded."""
    stream_frames = case[0]
    if stream_frames and stream_frames[-1][0] & 0x0F == frames.OP_CLOSE:
        stream_frames = stream_frames[:-1]
    prefix = b"".join(stream_frames)
    if fragment:  # a fragmented input whose running total crosses the cap at its second fragment
        first = frame(frames.OP_BINARY, b"\x81" + bytes(99), mask)
        over = _oversized_header(frames.OP_CONT, CLIENT_CAP - 99, mask)
        bad, header_end = first + over + tail, len(first) + len(over)
    else:
        over = _oversized_header(frames.OP_BINARY, declared, mask)
        bad, header_end = over + tail, len(over)
    stream = prefix + bad
    errors: list[Exception] = []
    upstream = Transport()
    up = splice.ClientToUpstream(Events(), CLIENT_CAP, upstream=upstream, on_error=errors.append)
    fed = 0
    for piece in partition(stream, cuts):
        up.feed(piece)
        fed += len(piece)
        if fed >= len(prefix) + header_end:
            assert len(errors) == 1, "not refused when its header was whole"
    assert [type(e) for e in errors] == [protocol.FrameTooLarge]
    writes, _ = run_client([prefix])
    assert len(upstream.writes) == len(writes)  # the valid inputs before it went; nothing of it did


@settings(FUZZ, max_examples=300)
@given(messages(masked=False), st.sampled_from(["text", "binary", "text-fragments"]), st.binary(max_size=40),
       st.lists(st.integers(1, 1 << 20), max_size=30))
def test_an_upstream_header_over_the_cap_is_refused_from_the_header(case, kind, tail, cuts) -> None:
    """An upstream text message over 1 MiB or an output over 64 MiB: UPSTREAM_ERROR from its header,
    whatever the read boundaries, and not a byte of it reaches the client."""
    stream_frames = case[0]
    if stream_frames and stream_frames[-1][0] & 0x0F == frames.OP_CLOSE:
        stream_frames = stream_frames[:-1]
    prefix = b"".join(stream_frames)
    if kind == "text":
        bad = _oversized_header(frames.OP_TEXT, splice.MAX_UPSTREAM_TEXT + 1, None)
    elif kind == "binary":
        bad = _oversized_header(frames.OP_BINARY, 2**31, None)
    else:
        first = frame(frames.OP_TEXT, b"{" * 1000, None)
        bad = first + _oversized_header(frames.OP_CONT, splice.MAX_UPSTREAM_TEXT - 999, None)
    header_end = len(bad)
    stream = prefix + bad + tail
    errors: list[Exception] = []
    sink = splice.Sink(Transport())
    down = splice.UpstreamToClients(Events(), [sink], on_error=errors.append)
    fed = 0
    for piece in partition(stream, cuts):
        down.feed(piece)
        fed += len(piece)
        if fed >= len(prefix) + header_end:
            assert len(errors) == 1, "not refused when its header was whole"
    assert [type(e) for e in errors] == [protocol.UpstreamError]
    assert "more than the relay holds" in errors[0].reason  # type: ignore[attr-defined]
    assert sink.transport.data == run_upstream([prefix], tap=False, viewers=0)[0][0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("length", [126, 65_535, 65_536, 100_000])
def test_every_single_cut_of_an_input_is_read_the_same(length: int) -> None:
    """Each cut point of one input (16-bit and 64-bit lengths): the 7-byte and 133-byte first reads the
    old inline path misread among them."""
    payload = b"\x81" + bytes(length - 1)
    whole = frame(frames.FIN | frames.OP_BINARY, payload, b"\x01\x02\x03\x04")
    cuts = list(range(1, 40)) + [133, len(whole) - 1] + list(range(200, len(whole), 997))
    for cut in cuts:
        writes, events = run_client([whole[:cut], whole[cut:]], cap=1 << 20)
        assert events == [("input", payload)] and len(writes) == 1, cut
        size = len(whole) - length
        assert writes[0][: size - 4] == whole[: size - 4] and writes[0][size - 4 : size] != b"\x01\x02\x03\x04"
        assert frames.unmask(writes[0][size:], writes[0][size - 4 : size]) == payload, cut


@pytest.mark.parametrize("length", [126, 65_535, 65_536, 100_000])
def test_every_single_cut_of_an_output_is_relayed_the_same(length: int) -> None:
    """Each cut point of one upstream output, around its header and through its payload."""
    payload = b"\x81" + bytes(length - 1)
    whole = frame(frames.FIN | frames.OP_BINARY, payload, None)
    for cut in list(range(1, 40)) + [133, len(whole) - 1] + list(range(200, len(whole), 997)):
        outs, events, _ = run_upstream([whole[:cut], whole[cut:]], tap=False, viewers=0)
        assert outs[0] == whole and events == [("output", length)], cut


UPSTREAM_VIOLATIONS = {
    "rsv-bit": (bytes([0x80 | 0x40 | frames.OP_BINARY, 2]) + b"\x81\x00",
                "upstream broke the WebSocket protocol: reserved bits are set but no extension was negotiated"),
    "reserved-opcode": (bytes([0x83, 1]) + b"\x81", "upstream broke the WebSocket protocol: opcode 0x3 is reserved"),
    "invalid-utf8": (frame(frames.FIN | frames.OP_TEXT, b"\xff\xfe", None),
                     "upstream broke the WebSocket protocol: text is not valid UTF-8"),
    "long-ping": (frames.frame_header(frames.OP_PING, 200) + bytes(200),
                  "upstream broke the WebSocket protocol: control frames must be whole and at most 125 bytes"),
    "fragmented-ping": (frame(frames.OP_PING, b"x", None),
                        "upstream broke the WebSocket protocol: control frames must be whole and at most 125 bytes"),
    "masked": (frame(frames.FIN | frames.OP_BINARY, b"\x80", b"abcd"),
               "upstream broke the WebSocket protocol: server frames must not be masked"),
    "orphan-continuation": (frame(frames.FIN | frames.OP_CONT, b"\x80", None),
                            "upstream broke the WebSocket protocol: a continuation frame came with no message "
                            "to continue"),
    "bad-close-code": (frame(frames.FIN | frames.OP_CLOSE, struct.pack(">H", 1005), None),
                       "upstream broke the WebSocket protocol: close code 1005 is not one a peer may send"),
    "huge-text": (frames.frame_header(frames.OP_TEXT, 50_000_000),
                  f"upstream sent a text message over {splice.MAX_UPSTREAM_TEXT} bytes, more than the relay holds"),
}


@pytest.mark.parametrize("name", list(UPSTREAM_VIOLATIONS))
def test_upstream_violations_are_upstream_errors_and_reach_no_client(name: str) -> None:
    """Each rule broken by upstream: UPSTREAM_ERROR naming it; the client got the frames before it and nothing else."""
    bad, reason = UPSTREAM_VIOLATIONS[name]
    good = frame(frames.FIN | frames.OP_BINARY, b"\x81\xa1a\x01", None)
    for cut in range(1, len(good + bad)):
        errors: list[Exception] = []
        sink = splice.Sink(Transport())
        down = splice.UpstreamToClients(Events(), [sink], on_error=errors.append)
        down.feed((good + bad)[:cut])
        down.feed((good + bad)[cut:])
        assert [(type(e), e.reason) for e in errors] == [(protocol.UpstreamError, reason)], cut  # type: ignore
        assert sink.transport.data == good, cut  # type: ignore[attr-defined]


def test_a_fragmented_text_message_reaches_the_hook_whole() -> None:
    """x-fal-error JSON in three fragments, a ping between: the hook sees it whole, the client one frame."""
    text = protocol.error_frame("TIMEOUT", "no input for 5 s").encode()
    stream = (frame(frames.OP_TEXT, text[:5], None) + frame(frames.FIN | frames.OP_PING, b"p", None)
              + frame(frames.OP_CONT, text[5:20], None) + frame(frames.FIN | frames.OP_CONT, text[20:], None))
    outs, events, _ = run_upstream([stream], tap=False, viewers=0)
    assert events == [("ping", b"p"), ("text", text)]
    assert outs[0] == frames.frame_header(frames.OP_TEXT, len(text)) + text
