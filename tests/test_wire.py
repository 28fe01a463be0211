"""The wire at adversarial TCP splits: a real relay, inputs written as raw TCP pieces with pauses
between them, and a hand-written upstream that records every byte the relay forwards to it and
sends back whatever frames a test asks for, malformed ones included."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import msgpack
import pytest
import websockets

from realtime_server import frames, protocol

from .browser import chromium
from .conftest import RunningRelay
from .reliability import RawSocket, wait_for
from .test_frames import UPSTREAM_VIOLATIONS

APP = "raw/up"
PAUSE = 0.02  # between pieces: long enough for each piece to be its own read on the relay
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class RawUpstream:
    """Records what the relay sends after the handshake; answers each input `{"ack": n, "input": bytes}`,
    or, when the input has `raw`, writes those bytes as they are (in pieces, if it is a list, `pause` seconds
    apart)."""

    url: str = ""
    received: list[bytearray] = field(default_factory=list)  # per connection

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", head)
            assert match is not None
            accept = base64.b64encode(hashlib.sha1(match.group(1) + _GUID).digest())
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            received = bytearray()
            self.received.append(received)
            buf, count = b"", 0
            while chunk := await reader.read(65536):
                received += chunk
                buf += chunk
                while (header := frames.read_header(buf, 0, len(buf))) and len(buf) >= header[1] + header[2]:
                    first, size, length, _ = header
                    payload = frames.unmask(buf[size : size + length], buf[size - 4 : size])
                    buf = buf[size + length :]
                    if first & 0x0F == frames.OP_CLOSE:
                        return
                    if first & 0x0F != frames.OP_BINARY:
                        continue
                    count += 1
                    inputs = msgpack.unpackb(payload, raw=False)
                    raw = inputs.get("raw")
                    for piece in [raw] if isinstance(raw, bytes) else raw or []:
                        writer.write(piece)
                        await writer.drain()
                        await asyncio.sleep(inputs.get("pause", PAUSE))
                    if raw is None:
                        answer = msgpack.packb({"ack": count, "input": payload}, use_bin_type=True)
                        writer.write(frames.frame_header(frames.OP_BINARY, len(answer)) + answer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def raw_upstream() -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    upstream.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield upstream
    finally:
        server.close()


@pytest.fixture
async def wired(make_relay) -> AsyncIterator[tuple[RunningRelay, RawUpstream]]:
    async with raw_upstream() as upstream, make_relay(upstream_url=upstream.url, allowed_apps=(APP,),
                                                      max_connections_per_user=64) as relay:
        yield relay, upstream


async def _open(relay: RunningRelay) -> RawSocket:
    return await RawSocket.open(relay, f"/{APP}/realtime?fal_jwt_token={relay.ticket(sub='wire', apps=(APP,))}")


async def _send_in_pieces(raw: RawSocket, data: bytes, cuts: list[int]) -> None:
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        raw.writer.write(data[a:b])
        await raw.writer.drain()
        await asyncio.sleep(PAUSE)


def _sent_frames(received: bytes) -> list[tuple[int, int]]:
    """(opcode, declared length) of each frame the relay sent upstream, the last one possibly partial."""
    out, pos = [], 0
    while (header := frames.read_header(received, pos, len(received))) is not None:
        out.append((header[0] & 0x0F, header[2]))
        pos += header[1] + header[2]
    return out


def _unmasked(received: bytes) -> list[tuple[int, bytes]]:
    """(first byte, unmasked payload) of each whole data frame the relay sent upstream (its close left out)."""
    out, pos = [], 0
    while (header := frames.read_header(received, pos, len(received))) is not None:
        first, size, length, _ = header
        if len(received) < pos + size + length:
            break
        if first & 0x0F != frames.OP_CLOSE:
            key = received[pos + size - 4 : pos + size]
            out.append((first, frames.unmask(received[pos + size : pos + size + length], key)))
        pos += size + length
    return out


def _input_frame(size: int) -> tuple[bytes, bytes]:
    payload = msgpack.packb({"prompt": "a cat", "image_bytes": bytes(range(256)) * (size // 256)}, use_bin_type=True)
    return payload, frames.masked_frame(frames.OP_BINARY, payload)


# Cut points that fall inside and at the edges of a header with a 64-bit length (14 bytes with the mask),
# at the 133-byte read the old inline path misread, and byte by byte through the header.
CUTS_64 = [[c] for c in (1, 2, 3, 9, 10, 13, 14, 15, 133, 65_536)] + [list(range(1, 16)), [1, 14, 133, 50_000]]


async def test_a_100kb_input_split_at_any_point_is_answered(wired) -> None:
    """A valid 100 KB input written in pieces with pauses, cut at each adversarial point: answered, and
    forwarded upstream as the client framed it (under the relay's own mask)."""
    relay, upstream = wired
    payload, frame = _input_frame(100_000)
    assert len(frame) - len(payload) == 14

    async def one(cuts: list[int]) -> None:
        raw = await _open(relay)
        try:
            await _send_in_pieces(raw, frame, cuts)
            answer = await raw.next_frame(limit=15)
            assert answer is not None and answer[0] == frames.OP_BINARY, (cuts, answer and answer[1][:200])
            assert msgpack.unpackb(answer[1], raw=False)["input"] == payload, cuts
        finally:
            raw.close()

    async with asyncio.timeout(60):
        await asyncio.gather(*(one(cuts) for cuts in CUTS_64))
    forwarded = [_unmasked(bytes(r)) for r in upstream.received]
    assert forwarded == [[(frames.FIN | frames.OP_BINARY, payload)]] * len(CUTS_64)


async def test_a_16_bit_input_with_a_7_byte_first_read_is_answered(wired) -> None:
    """A 16-bit length read 7 bytes first (the old inline path computed length -1 and refused it)."""
    relay, _ = wired
    payload, frame = _input_frame(300)
    raw = await _open(relay)
    try:
        for cuts in ([7], [1, 2, 3, 4, 5, 6, 7, 8], [4], [8]):
            await _send_in_pieces(raw, frame, cuts)
            answer = await raw.next_frame(limit=15)
            assert answer is not None and msgpack.unpackb(answer[1], raw=False)["input"] == payload, cuts
    finally:
        raw.close()


async def test_a_header_declaring_2gb_is_refused_and_never_reaches_upstream(wired) -> None:
    """After a valid input, a header declaring 2 GB, cut anywhere: FRAME_TOO_LARGE, close 1009, and upstream
    got the valid input and the relay's close, not a byte of the oversized frame."""
    relay, upstream = wired
    payload, good = _input_frame(1000)
    bad = frames.frame_header(frames.OP_BINARY, 2**31, b"abcd") + b"\0" * 20

    async def one(cuts: list[int]) -> None:
        raw = await _open(relay)
        try:
            raw.writer.write(good)
            answer = await raw.next_frame(limit=15)
            assert answer is not None and answer[0] == frames.OP_BINARY
            await _send_in_pieces(raw, bad, cuts)
            error = await raw.next_frame(limit=15)
            assert error is not None and error[0] == frames.OP_TEXT, error
            refused = json.loads(error[1])
            cap = relay.settings.max_frame_bytes
            assert (refused["error"], refused["reason"]) == (
                "FRAME_TOO_LARGE", f"frame is {2**31} bytes; this relay accepts at most {cap}")
            close = await raw.next_frame(limit=15)
            assert close is not None and close[0] == frames.OP_CLOSE
            assert struct.unpack(">H", close[1][:2])[0] == protocol.CloseCode.MESSAGE_TOO_BIG
        finally:
            raw.close()

    cut_sets = [[c] for c in range(1, 15)] + [list(range(1, 15))]
    async with asyncio.timeout(60):
        await asyncio.gather(*(one(cuts) for cuts in cut_sets))
    await wait_for(lambda: relay.app.state.limits.total == 0, what="connections released")
    await asyncio.sleep(0.2)  # the relay's close frames reach the upstream
    assert len(upstream.received) == len(cut_sets)
    for received in upstream.received:
        sent = _sent_frames(bytes(received))
        assert sent[0] == (frames.OP_BINARY, len(payload)) and all(length < 2**20 for _, length in sent), sent
        assert [op for op, _ in sent[1:]] in ([], [frames.OP_CLOSE]), sent


@pytest.mark.parametrize("name", list(UPSTREAM_VIOLATIONS))
async def test_an_upstream_that_breaks_the_protocol_is_an_upstream_error(wired, name: str) -> None:
    """Each malformed upstream frame, written in two pieces: the client gets UPSTREAM_ERROR and close 1014,
    and not a byte of the bad frame."""
    relay, _ = wired
    bad, reason = UPSTREAM_VIOLATIONS[name]
    raw = await _open(relay)
    try:
        raw.writer.write(frames.masked_frame(frames.OP_BINARY, msgpack.packb({"raw": [bad[:1], bad[1:]]})))
        got = []
        while (frame := await raw.next_frame(limit=15)) is not None and frame[0] != frames.OP_CLOSE:
            got.append(frame)
    finally:
        raw.close()
    assert frame is not None and struct.unpack(">H", frame[1][:2])[0] == protocol.CloseCode.BAD_GATEWAY
    assert [(op, json.loads(body)) for op, body in got] == [
        (frames.OP_TEXT, {"type": "x-fal-error", "error": "UPSTREAM_ERROR", "reason": reason})]


async def test_a_fragmented_upstream_error_is_read_whole_and_logged_on_one_line(wired, caplog) -> None:
    """An x-fal-error from upstream in three fragments, a ping between, with a multi-line reason: the client
    gets it as one frame, closed with 1011; every log line of the relay is one line."""
    relay, _ = wired
    text = json.dumps({"type": "x-fal-error", "error": "MODEL_FAILED",
                       "reason": "1 validation error\nprompt\n  field required"}).encode()
    pieces = [frames.frame_header(frames.OP_TEXT, 10, fin=False) + text[:10],
              frames.frame_header(frames.OP_PING, 1) + b"p",
              frames.frame_header(frames.OP_CONT, 15, fin=False) + text[10:25],
              frames.frame_header(frames.OP_CONT, len(text) - 25) + text[25:]]
    caplog.set_level(logging.INFO, logger="realtime_server")
    raw = await _open(relay)
    try:
        raw.writer.write(frames.masked_frame(frames.OP_BINARY, msgpack.packb({"raw": pieces})))
        first = await raw.next_frame(limit=15)
        close = await raw.next_frame(limit=15)
    finally:
        raw.close()
    assert first == (frames.OP_TEXT, text)
    assert close is not None and struct.unpack(">H", close[1][:2])[0] == protocol.CloseCode.INTERNAL_ERROR
    await wait_for(lambda: relay.app.state.limits.total == 0, what="connection released")
    ended = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connection ended")]
    assert ended and "reason=1 validation error\\nprompt\\n  field required" in ended[0], ended
    assert all("\n" not in r.getMessage() for r in caplog.records if r.name.startswith("realtime_server"))


async def test_the_upstream_hop_is_masked_with_the_relays_own_keys(wired) -> None:
    """A client that masks with a key of its choosing (zero, which leaves its bytes plain on the wire) cannot
    choose what the relay writes upstream: each forwarded input carries a fresh key of the relay's own, never
    the client's, and unmasks to the input the client sent."""
    relay, upstream = wired
    raw = await _open(relay)
    chosen = b"\0\0\0\0"
    inputs = [msgpack.packb({"prompt": f"chosen bytes {n}", "seq": n}) for n in range(20)]
    try:
        for payload in inputs:
            raw.writer.write(frames.frame_header(frames.OP_BINARY, len(payload), chosen) + payload)
            answer = await raw.next_frame(limit=15)
            assert answer is not None and msgpack.unpackb(answer[1], raw=False)["input"] == payload
    finally:
        raw.close()
    received, pos, keys = bytes(upstream.received[0]), 0, []
    for payload in inputs:
        header = frames.read_header(received, pos, len(received))
        assert header is not None
        first, size, length, masked = header
        assert (first, length, masked) == (frames.FIN | frames.OP_BINARY, len(payload), True)
        key = received[pos + size - 4 : pos + size]
        assert frames.unmask(received[pos + size : pos + size + length], key) == payload
        assert payload not in received  # the client's plain bytes never reach the upstream hop as they were
        keys.append(key)
        pos += size + length
    assert chosen not in keys and len(set(keys)) == len(keys)


async def test_a_json_text_input_is_forwarded_as_sent(wired) -> None:
    """A client that speaks JSON (fal-js's `encodeMessage`): its text frame, a JSON object, is forwarded upstream
    as a text frame with the same payload (under the relay's mask), in order with msgpack inputs; whole or in
    fragments."""
    relay, upstream = wired
    raw = await _open(relay)
    text = json.dumps({"prompt": "a JSON cat", "seed": 7}).encode()
    follow = msgpack.packb({"seq": 2})
    first = msgpack.packb({"seq": 1})
    try:
        raw.writer.write(frames.masked_frame(frames.OP_BINARY, first))
        assert await raw.next_frame(limit=15) is not None  # upstream is open: nothing waits (newest wins) now
        raw.writer.write(frames.masked_frame(frames.OP_TEXT, text))
        raw.writer.write(frames.masked_frame(frames.OP_TEXT, text[:5], fin=False)
                         + frames.masked_frame(frames.OP_CONT, text[5:]))
        raw.writer.write(frames.masked_frame(frames.OP_BINARY, follow))
        answer = await raw.next_frame(limit=15)  # the upstream answers binary inputs only
        assert answer is not None and msgpack.unpackb(answer[1], raw=False)["input"] == follow
    finally:
        raw.close()
    assert _unmasked(bytes(upstream.received[0])) == [(0x82, first), (0x81, text), (0x81, text), (0x82, follow)]


OUTPUT = msgpack.packb({"seq": 1, "pad": bytes(3000)})
FRAGMENTS = [frames.frame_header(frames.OP_BINARY, 1000, fin=False) + OUTPUT[:1000],
             frames.frame_header(frames.OP_PING, 4) + b"ping",
             frames.frame_header(frames.OP_CONT, len(OUTPUT) - 1000) + OUTPUT[1000:]]
TIMEOUT = json.dumps({"type": "x-fal-error", "error": "TIMEOUT", "reason": "no input for 5 s"}).encode()


async def test_a_fragmented_output_is_tapped_and_counted_like_any_other(wired) -> None:
    """An output in fragments (a ping between them) reaches the driver, the viewers and a late joiner as one message,
    and answers the input: the upstream's idle TIMEOUT after it re-sends nothing, and the latency is one sample."""
    relay, upstream = wired

    def ticket(sub: str, role: str) -> str:
        return relay.ticket(sub=sub, apps=(APP,), session="fragments", role=role)

    async with websockets.connect(relay.url(APP, ticket=ticket("d", "driver"))) as driver, \
            websockets.connect(relay.url(APP, ticket=ticket("v", "viewer"))) as viewer:
        await driver.send(msgpack.packb({"raw": [*FRAGMENTS, frames.frame_header(frames.OP_TEXT, len(TIMEOUT))
                                                 + TIMEOUT]}))
        async with asyncio.timeout(10):
            assert await driver.recv() == OUTPUT
            while (got := await viewer.recv()) != OUTPUT:
                assert isinstance(got, str), got  # session notices only
        async with websockets.connect(relay.url(APP, ticket=ticket("late", "viewer"))) as late:
            async with asyncio.timeout(10):
                assert await late.recv() == OUTPUT  # the late joiner's picture so far
        await asyncio.sleep(0.5)  # time for a re-send after the TIMEOUT, if the output had not answered it
        assert len(upstream.received) == 1
    assert relay.metric("relay_frame_latency_seconds_count") == 1
    assert relay.metric("relay_frames_total", direction="upstream") == 1


@pytest.mark.parametrize(("after", "reason"), [
    (frames.frame_header(frames.OP_BINARY, 3) + b"\x80ab",
     "UPSTREAM_ERROR: upstream broke the WebSocket protocol: a new message (opcode 0x2) began in the middle of a "
     "fragmented one"),
    (frames.frame_header(frames.OP_CLOSE, 2) + b"\x03\xe8",
     "UPSTREAM_ERROR: upstream closed the connection inside a message (code 1000)"),
], ids=["protocol-broken", "closed"])
async def test_an_upstream_ending_inside_a_message_gets_a_close_frame_only(wired, after: bytes, reason: str) -> None:
    """Upstream breaks off after the first fragment of an output went out: no x-fal-error inside the unfinished
    message (a browser fails that with 1002), only a close, 1014 with the cause in its reason."""
    relay, _ = wired
    async with websockets.connect(relay.url(APP, ticket=relay.ticket(sub="mid", apps=(APP,)))) as ws:
        await ws.send(msgpack.packb({"raw": [FRAGMENTS[0], after]}))
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            async with asyncio.timeout(10):
                await ws.recv()
    # What the client got: the first fragment, then the close (websockets answers it with 1002 for the message
    # left incomplete; a browser reports the relay's code and reason).
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1014, protocol.close_reason(reason))


async def test_the_clients_frames_are_read_while_the_relay_waits_for_a_boundary(make_relay) -> None:
    """The connection's lifetime ends while an output is part-way out: the relay waits for its last fragment. An
    input and then the client's close, sent meanwhile, are read (the input discarded): at the boundary the relay
    sends its error and close and hangs up at once, without waiting the close timeout for a close it missed."""
    async with raw_upstream() as upstream, make_relay(upstream_url=upstream.url, allowed_apps=(APP,),
                                                      max_session_seconds=0.6) as relay:
        raw = await _open(relay)
        try:
            raw.writer.write(frames.masked_frame(frames.OP_BINARY, msgpack.packb(
                {"raw": [FRAGMENTS[0], FRAGMENTS[2]], "pause": 1.2})))
            assert (await raw.next_frame(limit=5))[0] == frames.OP_BINARY  # type: ignore[index]
            await asyncio.sleep(0.9)  # the lifetime has ended; the relay waits for the last fragment
            raw.writer.write(frames.masked_frame(frames.OP_BINARY, msgpack.packb({"seq": 2}))
                             + frames.masked_frame(frames.OP_CLOSE, struct.pack(">H", 1000)))
            got = [await raw.next_frame(limit=5) for _ in range(3)]
            closed_at = asyncio.get_running_loop().time()
            assert await raw.next_frame(limit=5) is None  # the relay hung up
            hung_up = asyncio.get_running_loop().time() - closed_at
        finally:
            raw.close()
    assert [frame[0] for frame in got if frame] == [frames.OP_CONT, frames.OP_TEXT, frames.OP_CLOSE]
    assert json.loads(got[1][1])["error"] == "SESSION_EXPIRED"  # type: ignore[index]
    assert hung_up < 0.5, hung_up  # the close timeout is 2 s
    assert sum(bytes(r).count(msgpack.packb({"seq": 2})) for r in upstream.received) == 0


async def test_the_browser_client_reads_the_cause_from_a_close_inside_a_message(wired) -> None:
    """Chromium and the browser client: upstream breaks off after the first fragment of an output; the page's
    socket closes with 1014 (not a protocol error, 1002), and the client reports UPSTREAM_ERROR with its reason."""
    relay, _ = wired
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{relay.http}/health")
        got = await page.evaluate("""async ({ url, ticket, pieces }) => {
            const { RealtimeClient } = await import("/static/fal_realtime.js");
            const client = new RealtimeClient({ url, ticket, reconnect: { maxAttempts: 0 } });
            const closes = [];
            const Socket = window.WebSocket;
            window.WebSocket = class extends Socket {
                constructor(address) { super(address); this.addEventListener("close", (e) => closes.push(e.code)); }
            };
            const error = new Promise((resolve) => client.addEventListener("error", (e) => resolve(e.detail)));
            client.send({ raw: pieces.map((piece) => new Uint8Array(piece)) });
            const { code, reason } = await error;
            await new Promise((resolve) => setTimeout(resolve, 200));
            return { code, reason, closes };
        }""", {"url": relay.url(APP), "ticket": relay.ticket(sub="page", apps=(APP,)),
               "pieces": [list(FRAGMENTS[0]), list(frames.frame_header(frames.OP_BINARY, 3) + b"\x80ab")]})
    assert got == {"code": "UPSTREAM_ERROR", "closes": [1014], "reason": "upstream broke the WebSocket protocol: "
                   "a new message (opcode 0x2) began in the middle of a fragmented one"}, got
