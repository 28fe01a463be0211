"""The frame splice: boundaries from headers, bytes passed through unchanged, the relay's policies kept."""

from __future__ import annotations

import os
import random
from typing import Any

import msgpack
import pytest

from realtime_server import frames, protocol, splice
from realtime_server.connection import SplicedConnection, State
from realtime_server.settings import Settings

from .conftest import pack


class FakeTransport:
    """Records writes, keeping the objects written so a test can tell a pass-through from a copy."""

    def __init__(self) -> None:
        self.writes: list[Any] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(bytes(w) for w in self.writes)


class Hooks:
    def __init__(self, forward_text: bool = True) -> None:
        self.texts: list[bytes] = []
        self.closes: list[bytes] = []
        self.pings: list[bytes] = []
        self.inputs: list[bytes] = []
        self.outputs = 0
        self.output_bytes = 0
        self.forward_text = forward_text

    def on_upstream_text(self, payload: bytes) -> bool:
        self.texts.append(payload)
        return self.forward_text

    def on_upstream_close(self, payload: bytes) -> None:
        self.closes.append(payload)

    def on_upstream_ping(self, payload: bytes) -> None:
        self.pings.append(payload)

    def on_upstream_frame(self, length: int) -> None:
        self.outputs += 1
        self.output_bytes += length

    def on_input(self, payload: bytes, text: bool = False) -> None:
        protocol.check_input(payload, 1 << 20, text=text)
        self.inputs.append(payload)

    def on_client_ping(self, payload: bytes) -> None:
        self.pings.append(payload)

    def on_client_close(self, payload: bytes) -> None:
        self.closes.append(payload)


def server_frame(payload: bytes, opcode: int = frames.OP_BINARY) -> bytes:
    return frames.frame_header(opcode, len(payload)) + payload


def client_frame(payload: bytes, opcode: int = frames.OP_BINARY) -> bytes:
    mask = os.urandom(4)
    return frames.frame_header(opcode, len(payload), mask) + frames.unmask(payload, mask)


def unmasked(data: bytes) -> list[tuple[int, bytes]]:
    """(first byte, unmasked payload) of each whole masked frame in `data`: what a relay sent upstream."""
    out, pos = [], 0
    while (header := frames.read_header(data, pos, len(data))) is not None:
        first, size, length, masked = header
        assert masked, "every frame on the upstream hop is masked"
        out.append((first, frames.unmask(data[pos + size : pos + size + length], data[pos + size - 4 : pos + size])))
        pos += size + length
    assert pos == len(data)
    return out


def output(size: int, seq: int = 0) -> bytes:
    packed: bytes = msgpack.packb({"seq": seq, "pad": bytes(size)}, use_bin_type=True)
    return packed


def test_read_header_reads_each_length_encoding() -> None:
    """7-bit, 16-bit and 64-bit lengths, with and without a mask; None until the header is whole."""
    for length, size in ((5, 2), (300, 4), (70_000, 10)):
        head = frames.frame_header(frames.OP_BINARY, length)
        header = frames.read_header(head, 0, len(head))
        assert header == frames.Header(first_byte=0x82, size=size, payload_length=length, masked=False)
        assert type(header) is frames.Header and header.payload_length == length
        assert frames.read_header(head, 0, len(head) - 1) is None
        masked = frames.frame_header(frames.OP_BINARY, length, b"abcd")
        assert frames.read_header(masked, 0, len(masked)) == (0x82, size + 4, length, True)


def test_unmask_matches_the_bytewise_definition() -> None:
    """websockets' apply_mask equals RFC 6455's per-byte masking, and undoes itself."""
    for n in (0, 1, 3, 4, 5, 200, 4097):
        data, key = os.urandom(n), os.urandom(4)
        assert frames.unmask(data, key) == bytes(b ^ key[i % 4] for i, b in enumerate(data))
        assert frames.unmask(frames.unmask(data, key), key) == data


def test_upstream_frames_reach_the_client_unchanged_however_reads_split() -> None:
    """Frames of every size arrive byte for byte, whatever the read boundaries."""
    stream = b"".join(server_frame(output(n, i)) for i, n in enumerate((0, 10, 200, 70_000, 3, 600_000)))
    rng = random.Random(4)
    for _ in range(30):
        sink = splice.Sink(FakeTransport())
        down = splice.UpstreamToClients(Hooks(), [sink])
        pos = 0
        while pos < len(stream):
            step = rng.choice((1, 2, 3, 7, 100, 5000, 70_000))
            down.feed(stream[pos : pos + step])
            pos += step
        assert sink.transport.data == stream  # type: ignore[attr-defined]
        assert down.frames == 6


def test_a_read_of_whole_frames_is_written_as_the_same_object() -> None:
    """No copy on the fast path: the bytes read are the bytes written."""
    sink = splice.Sink(FakeTransport())
    data = server_frame(output(65536)) + server_frame(output(10))
    splice.UpstreamToClients(Hooks(), [sink]).feed(data)
    assert sink.transport.writes == [data] and sink.transport.writes[0] is data  # type: ignore[attr-defined]


def test_text_frames_go_through_the_hook_and_close_frames_stop_the_stream() -> None:
    """x-fal text is shown to the hook (forwarded only if it says so); a close is never forwarded."""
    hooks = Hooks(forward_text=False)
    sink = splice.Sink(FakeTransport())
    down = splice.UpstreamToClients(hooks, [sink])
    timeout = protocol.error_frame("TIMEOUT", "no inputs").encode()
    first = server_frame(output(4))
    down.feed(first + server_frame(timeout, frames.OP_TEXT) + server_frame(b"\x03\xe8", frames.OP_CLOSE)
              + server_frame(output(5)))
    assert hooks.texts == [timeout] and hooks.closes == [b"\x03\xe8"] and hooks.outputs == 1
    assert sink.transport.data == first  # type: ignore[attr-defined]
    assert down.closed


def test_a_binary_frame_that_is_not_a_msgpack_map_is_refused() -> None:
    """Upstream output must start like a msgpack map, as relay.py requires."""
    down = splice.UpstreamToClients(Hooks(), [splice.Sink(FakeTransport())])
    with pytest.raises(protocol.UpstreamError) as exc:
        down.feed(server_frame(b"\x93\x01\x02\x03"))
    assert exc.value.reason == "upstream sent a binary frame that is not a msgpack map"


def test_a_paused_viewer_gets_only_the_newest_frame_when_it_drains() -> None:
    """Latest frame wins: while paused, whole frames are parked and replaced; memory stays one frame."""
    sink = splice.Sink(FakeTransport(), paused=True)
    down = splice.UpstreamToClients(Hooks(), [sink])
    frames = [server_frame(output(1000, i)) for i in range(5)]
    for frame in frames:
        down.feed(frame)
    assert sink.transport.writes == [] and sink.dropped == 4  # type: ignore[attr-defined]
    sink.resume()
    assert sink.transport.data == frames[-1]  # type: ignore[attr-defined]


def test_client_inputs_are_checked_unmasked_and_forwarded_as_framed() -> None:
    """The hook sees the unmasked input; upstream gets each input as one frame under a key of the relay's own."""
    hooks, upstream = Hooks(), FakeTransport()
    up = splice.ClientToUpstream(hooks, max_frame_bytes=1 << 20, upstream=upstream)
    frames = [client_frame(pack(prompt=f"p{i}", seed=i)) for i in range(3)]
    up.feed(frames[0])
    up.feed(frames[1][:3])
    up.feed(frames[1][3:] + frames[2])
    assert hooks.inputs == [pack(prompt=f"p{i}", seed=i) for i in range(3)]
    sent = [(0x82, pack(prompt=f"p{i}", seed=i)) for i in range(3)]
    assert unmasked(upstream.data) == sent and unmasked(up.unanswered or b"") == sent[2:]
    assert not {frame[2:6] for frame in frames} & {bytes(w)[2:6] for w in upstream.writes}


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (client_frame(b"not json", frames.OP_TEXT), "frame is not valid JSON (JSONDecodeError)"),
        (client_frame(pack(prompt="x"), frames.OP_TEXT), "frame is not valid JSON (UnicodeDecodeError)"),
        (client_frame(b'["prompt"]', frames.OP_TEXT), "frame must be a JSON object of inputs, got list"),
        (server_frame(pack(prompt="x")), "client frames must be masked"),
        (frames.frame_header(frames.OP_BINARY, 2_000_000, b"abcd"),
         "frame is 2000000 bytes; this relay accepts at most 1048576"),
    ],
)
def test_bad_client_frames_are_refused(frame: bytes, reason: str) -> None:
    """Text that is no JSON object, unmasked and oversized frames end the session; an oversized one from its
    header alone."""
    up = splice.ClientToUpstream(Hooks(), max_frame_bytes=1 << 20, upstream=FakeTransport())
    with pytest.raises(protocol.RelayError) as exc:
        up.feed(frame)
    assert exc.value.reason == reason


def test_while_upstream_is_paused_the_newest_input_wins() -> None:
    """One input waits; newer ones replace it and count as dropped; it goes out on resume."""
    upstream = FakeTransport()
    up = splice.ClientToUpstream(Hooks(), max_frame_bytes=1 << 20, upstream=upstream, upstream_paused=True)
    frames = [client_frame(pack(seed=i)) for i in range(3)]
    for frame in frames:
        up.feed(frame)
    assert upstream.writes == [] and up.dropped == 2
    up.resume()
    assert unmasked(upstream.data) == [(0x82, pack(seed=2))]


def test_pings_go_to_the_hook_and_a_close_reaches_the_hook() -> None:
    """Keepalive is per hop: a client ping is handed to the relay, not forwarded; so is its close."""
    hooks, upstream = Hooks(), FakeTransport()
    up = splice.ClientToUpstream(hooks, max_frame_bytes=1 << 20, upstream=upstream)
    up.feed(client_frame(b"hi", frames.OP_PING) + client_frame(b"", frames.OP_PONG)
            + client_frame(b"\x03\xe8", frames.OP_CLOSE))
    assert upstream.writes == [] and hooks.pings == [b"hi"] and hooks.closes == [b"\x03\xe8"] and up.closed


def test_a_fragmented_input_is_checked_whole_and_sent_as_one_frame() -> None:
    """Fragments (with a ping between them) become one input: checked once, sent as one masked frame."""
    hooks, upstream = Hooks(), FakeTransport()
    up = splice.ClientToUpstream(hooks, max_frame_bytes=1 << 20, upstream=upstream)
    payload = pack(prompt="a fragmented prompt", seed=5)
    first, rest = payload[:7], payload[7:]
    mask = os.urandom(4)
    up.feed(frames.frame_header(frames.OP_BINARY, len(first), mask, fin=False) + frames.unmask(first, mask)
            + client_frame(b"p", frames.OP_PING)
            + frames.frame_header(frames.OP_CONT, len(rest), mask) + frames.unmask(rest, mask))
    assert hooks.inputs == [payload] and hooks.pings == [b"p"]
    header = frames.read_header(upstream.data, 0, len(upstream.data))
    assert header is not None and header[0] == 0x82 and header[2] == len(payload) and header[3]
    assert frames.unmask(upstream.data[header[1]:], upstream.data[header[1] - 4 : header[1]]) == payload


def test_fragments_that_add_up_past_the_limit_are_refused() -> None:
    """The running total of a fragmented input counts, not each fragment alone."""
    up = splice.ClientToUpstream(Hooks(), max_frame_bytes=100, upstream=FakeTransport())
    mask = b"abcd"
    with pytest.raises(protocol.FrameTooLarge):
        up.feed(frames.frame_header(frames.OP_BINARY, 60, mask, fin=False) + bytes(60)
                + frames.frame_header(frames.OP_CONT, 60, mask) + bytes(60))


def test_upstream_pings_go_to_the_hook_and_relay_frames_wait_for_a_boundary() -> None:
    """An upstream ping is not forwarded; a pong the relay writes mid-frame goes out after that frame."""
    hooks, sink = Hooks(), splice.Sink(FakeTransport())
    down = splice.UpstreamToClients(hooks, [sink])
    frame = server_frame(output(5000, 1))
    down.feed(server_frame(b"up", frames.OP_PING) + frame[:100])
    down.write_between_frames(b"PONG")
    assert sink.transport.data == frame[:100]  # type: ignore[attr-defined]
    down.feed(frame[100:])
    assert sink.transport.data == frame + b"PONG" and hooks.pings == [b"up"]  # type: ignore[attr-defined]


def test_stop_at_boundary_lets_the_current_frame_finish_and_nothing_after() -> None:
    """The relay's closing frames never land inside an upstream frame."""
    sink = splice.Sink(FakeTransport())
    down = splice.UpstreamToClients(Hooks(), [sink])
    first, second = server_frame(output(5000, 1)), server_frame(output(10, 2))
    down.feed(first[:100])
    stopped: list[bool] = []
    down.stop_at_boundary(lambda: stopped.append(True))
    assert not stopped
    down.feed(first[100:] + second)
    assert stopped == [True] and sink.transport.data == first and down.closed  # type: ignore[attr-defined]


def test_a_stale_pause_does_not_park_a_frame_when_the_buffer_is_empty() -> None:
    """Paused flag set but nothing queued (resume_writing not yet delivered): the frame goes straight out."""

    class Drained(FakeTransport):
        def get_write_buffer_size(self) -> int:
            return 0

    sink = splice.Sink(Drained(), paused=True, parked=server_frame(output(10, 1)))
    frame = server_frame(output(1000, 2))
    splice.UpstreamToClients(Hooks(), [sink]).feed(frame)
    assert sink.transport.data == frame and not sink.paused  # type: ignore[attr-defined]
    assert sink.parked is None and sink.dropped == 1


def test_the_inline_paths_relay_exactly_what_the_general_path_does() -> None:
    """One frame per read, a frame over several reads, then two frames in one read: same bytes, same counts."""
    hooks, sink = Hooks(), splice.Sink(FakeTransport())
    down = splice.UpstreamToClients(hooks, [sink])
    one, big, a, b = (server_frame(output(n, i)) for i, n in enumerate((100, 300_000, 5, 6)))
    down.feed(one)
    assert sink.transport.writes[0] is one  # type: ignore[attr-defined]
    for start in range(0, len(big), 70_000):
        down.feed(big[start : start + 70_000])
    down.feed(a + b)
    assert sink.transport.data == one + big + a + b  # type: ignore[attr-defined]
    assert down.frames == hooks.outputs == 4


def test_a_masked_upstream_frame_is_refused_even_when_its_length_fits_the_read() -> None:
    """Servers never mask: 0x80 in the second byte is refused, not read as a 128-byte length."""
    frame = frames.frame_header(frames.OP_BINARY, 0, b"abcd") + bytes(124)
    with pytest.raises(protocol.UpstreamError):
        splice.UpstreamToClients(Hooks(), [splice.Sink(FakeTransport())]).feed(frame)


def test_an_error_goes_to_on_error_and_stops_the_direction() -> None:
    """With `on_error` set, a bad frame is reported once and nothing after it is relayed."""
    errors: list[Exception] = []
    upstream = FakeTransport()
    up = splice.ClientToUpstream(Hooks(), max_frame_bytes=1 << 20, upstream=upstream, on_error=errors.append)
    up.feed(client_frame(b"hello", frames.OP_TEXT))
    up.feed(client_frame(pack(seed=1)))
    assert [type(e) for e in errors] == [protocol.BadFrame] and upstream.writes == [] and up.closed


def test_after_the_relays_close_inputs_are_dropped_and_the_clients_close_still_reported() -> None:
    """Discarding: a whole input in one read (the inline path) is not forwarded; the close is seen."""
    hooks, upstream = Hooks(), FakeTransport()
    up = splice.ClientToUpstream(hooks, max_frame_bytes=1 << 20, upstream=upstream)
    assert up.discard_until_close()
    up.feed(client_frame(pack(seed=1)))
    up.feed(client_frame(b"\x03\xe8", frames.OP_CLOSE))
    assert upstream.writes == [] and hooks.inputs == [] and hooks.closes == [b""] and up.closed


def test_whole_frames_offered_to_a_congested_sink_are_parked_or_skipped_and_counted() -> None:
    """`Sink.offer` (a viewer's frames): outputs are parked, the newest winning; text frames are
    skipped while congested; `take_counts` reports each write and drop once, the resumed one included."""
    sink = splice.Sink(FakeTransport())
    sink.offer(b"a", output=True)
    assert sink.take_counts() == (1, 0)
    sink.paused = True
    sink.offer(b"b", output=True)
    sink.offer(b"note", output=False)
    sink.offer(b"c", output=True)
    assert sink.parked == b"c" and sink.take_counts() == (0, 2)
    sink.resume()
    assert sink.transport.writes == [b"a", b"c"]  # type: ignore[attr-defined]
    assert sink.take_counts() == (1, 0) and sink.take_counts() == (0, 0)


def test_a_connection_state_moves_only_along_the_closing_handshake() -> None:
    """OPEN -> CLOSING -> CLOSED, OPEN -> CLIENT_CLOSED -> CLOSED, anything -> CLOSED; nothing back."""
    for path in ([State.CLOSING, State.CLOSED], [State.CLIENT_CLOSED, State.CLOSED], [State.CLOSED]):
        connection = SplicedConnection(Settings())
        for state in path:
            connection._enter(state)
        assert connection.state is State.CLOSED and connection._closing
    connection = SplicedConnection(Settings())
    connection._enter(State.CLIENT_CLOSED)
    with pytest.raises(RuntimeError) as refused:
        connection._enter(State.CLOSING)
    assert str(refused.value) == "a spliced connection cannot go from client closed to closing"
    with pytest.raises(RuntimeError):
        SplicedConnection(Settings())._enter(State.OPEN)
