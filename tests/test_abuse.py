"""Slow and greedy clients: memory stays bounded, limits answer with their codes, everyone else carries on."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import struct
import time
from contextlib import AsyncExitStack
from pathlib import Path

import msgpack
import pytest
import websockets

from realtime_server.protocol import CloseCode
from realtime_server.relay import Relay

from .conftest import RunningRelay, pack
from .reliability import Canary, RawSocket, client_frame, live_tasks, open_fds, settle, wait_for
from .upstreams import FAULT_APPS, fault_upstream


def _rss() -> int:
    """Resident set size of this process (relay, upstream and clients alike), in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
async def greedy(make_relay):
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS,
                                                   max_connections_per_user=600, max_connections=600) as relay:
        yield relay


async def test_client_that_never_reads_keeps_memory_bounded(greedy: RunningRelay) -> None:
    """A client that never reads its socket while upstream pours 60 MiB at it: memory stays flat, the canary flows."""
    path = f"/fault/echo/realtime?fal_jwt_token={greedy.ticket(sub='sloth', apps=FAULT_APPS)}"
    async with Canary(greedy) as canary:
        sloth = await RawSocket.open(greedy, path)
        try:
            before, peak = _rss(), 0
            start = time.perf_counter()
            sloth.writer.write(client_frame(0x2, pack(seq=1, size=256 * 1024, count=240)))  # 60 MiB of answers
            deadline = time.monotonic() + 30
            while greedy.metric("relay_frames_total", direction="upstream") < 240:
                assert time.monotonic() < deadline, "upstream frames stopped flowing"
                peak = max(peak, _rss())
                await asyncio.sleep(0.01)
            answered, gap = canary.window(start, time.perf_counter())
            parked = [relay.client.sink.parked for relay in _relays(greedy) if relay.client is not None]
        finally:
            sloth.close()
    assert greedy.metric("relay_frames_dropped_total", direction="out") > 150  # of 240 frames, most are skipped
    assert peak - before < 32 * 1024 * 1024, f"RSS grew {(peak - before) / 2**20:.1f} MiB"
    assert parked and all(frame is None or len(frame) < 300 * 1024 for frame in parked)  # one frame at most
    assert gap < 2.0 and answered > 0, f"canary stalled for {gap:.2f} s"


def _relays(relay: RunningRelay) -> list[Relay]:
    """The live `Relay` objects of this server (found through the garbage collector: test-only introspection)."""
    # type() rather than isinstance(): it never dereferences a dead weakref proxy met on the way
    return [obj for obj in gc.get_objects() if type(obj) is Relay and obj.settings is relay.settings]


async def test_thousand_inputs_per_second_are_rate_limited(greedy: RunningRelay) -> None:
    """Ten clients at 1,000 inputs/s each get RATE_LIMITED within a second; the canary keeps its frame rate."""

    async def flood(n: int) -> tuple[dict, int, float]:
        ticket = greedy.ticket(sub=f"greedy-{n}", apps=("fault/ack",))
        # max_queue=None: the answers pile up unread here, and a client that stops reading would not see the close.
        async with websockets.connect(greedy.url("fault/ack", ticket=ticket), max_queue=None) as ws:
            start = time.perf_counter()
            sent = 0
            try:
                while time.perf_counter() - start < 5:
                    due = int((time.perf_counter() - start) * 1000)  # 1,000 inputs a second, on schedule
                    for _ in range(due - sent):
                        await ws.send(pack(seq=sent))
                        sent += 1
                    await asyncio.sleep(0.005)
            except websockets.ConnectionClosed:
                pass
            limited = time.perf_counter() - start  # when the relay's close stopped the sender
            async with asyncio.timeout(10):
                while not isinstance(frame := await ws.recv(), str):
                    pass  # answers to the inputs let through before the limit
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
        return json.loads(frame), closed.value.rcvd.code, limited

    async with Canary(greedy) as canary:
        await canary.wait_answers(10)
        baseline_start = canary.answers[-10]
        baseline = 9 / (canary.answers[-1] - baseline_start)
        start = time.perf_counter()
        results = await asyncio.gather(*(flood(n) for n in range(10)))
        answered, gap = canary.window(start, time.perf_counter())
        rate = answered / (time.perf_counter() - start)
    for payload, code, limited in results:
        assert payload == {"type": "x-fal-error", "error": "RATE_LIMITED",
                           "reason": "more than 60 inputs per second; send the newest input only"}
        assert code == 1013
        assert limited < 1.0, f"limited only after {limited:.2f} s"
    assert rate >= 0.5 * baseline and gap < 2.0, f"canary {rate:.1f}/s vs {baseline:.1f}/s, gap {gap:.2f} s"


@pytest.fixture
async def crowded(make_relay):
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS,
                                                   max_connections_per_user=600, max_connections=501) as relay:
        yield relay


async def test_five_hundred_idle_connections(crowded: RunningRelay) -> None:
    """500 idle connections: small memory each, the canary keeps pace, one more is TOO_MANY_CONNECTIONS, none leak."""
    greedy = crowded
    await _round_trip(greedy, "warm-up")
    fds, tasks = await settle(open_fds, 0, limit=1), await settle(live_tasks, 0, limit=1)
    async with Canary(greedy) as canary:
        await canary.wait_answers(10)
        baseline = 9 / (canary.answers[-1] - canary.answers[-10])
        rss_before = _rss()
        async with AsyncExitStack() as stack:
            gate = asyncio.Semaphore(32)

            async def idle(n: int) -> None:
                async with gate:
                    ticket = greedy.ticket(sub=f"idle-{n}", apps=("fault/ack",))
                    await stack.enter_async_context(websockets.connect(greedy.url("fault/ack", ticket=ticket),
                                                                      open_timeout=60, close_timeout=5))

            async with asyncio.timeout(120):
                await asyncio.gather(*(idle(n) for n in range(500)))  # with the canary: 501, the limit
            await wait_for(lambda: greedy.app.state.limits.total == 501, what="501 connections admitted")
            per_connection = (_rss() - rss_before) / 500
            ticket = greedy.ticket(sub="one-too-many", apps=("fault/ack",))
            async with websockets.connect(greedy.url("fault/ack", ticket=ticket)) as extra:
                async with asyncio.timeout(10):
                    payload = json.loads(await extra.recv())
            assert payload["error"] == "TOO_MANY_CONNECTIONS"
            start = time.perf_counter()
            await canary.wait_answers(20)
            rate = 20 / (canary.answers[-1] - start)
    await _round_trip(greedy, "after")
    await wait_for(lambda: greedy.app.state.limits.total == 0, limit=30, what="all connections released")
    after_fds = await settle(open_fds, fds, limit=30)
    after_tasks = await settle(live_tasks, tasks, limit=30)
    assert payload["reason"] == "relay is at its limit of 501 connections; retry shortly"
    assert per_connection < 200 * 1024, f"{per_connection / 1024:.0f} KiB per idle connection (all four sockets)"
    assert rate >= 0.5 * baseline, f"canary {rate:.1f}/s with 500 idle vs {baseline:.1f}/s"
    assert after_fds <= fds and after_tasks <= tasks, f"fds {fds} -> {after_fds}, tasks {tasks} -> {after_tasks}"


async def _round_trip(relay: RunningRelay, sub: str) -> None:
    async with websockets.connect(relay.url("fault/ack", ticket=relay.ticket(sub=sub, apps=("fault/ack",)))) as ws:
        await ws.send(pack(seq=1))
        async with asyncio.timeout(15):
            assert msgpack.unpackb(await ws.recv(), raw=False)["ack"] == 1


async def test_connection_churn_leaks_nothing(greedy: RunningRelay) -> None:
    """300 connect-send-close cycles and 100 abrupt hang-ups mid-stream leave no fd, task or slot behind,
    and a session running alongside keeps getting answers throughout."""
    await _round_trip(greedy, "warm-up")
    fds, tasks = await settle(open_fds, 0, limit=1), await settle(live_tasks, 0, limit=1)
    accepted = greedy.metric("relay_connections_total", outcome="accepted")
    gate = asyncio.Semaphore(10)

    async def polite(n: int) -> None:
        async with gate:
            await _round_trip(greedy, f"churn-{n % 20}")

    async def rude(n: int) -> None:
        async with gate:
            raw = await RawSocket.open(greedy, f"/fault/echo/realtime?fal_jwt_token="
                                               f"{greedy.ticket(sub=f'rude-{n % 20}', apps=FAULT_APPS)}")
            raw.writer.write(client_frame(0x2, pack(seq=n, size=64 * 1024, count=5)))
            await raw.next_frame()
            raw.close()  # TCP abort mid-stream: no close frame

    async with Canary(greedy) as canary:
        start = time.perf_counter()
        async with asyncio.timeout(120):
            await asyncio.gather(*(polite(n) for n in range(300)), *(rude(n) for n in range(100)))
        answered, gap = canary.window(start, time.perf_counter())
    await wait_for(lambda: greedy.app.state.limits.total == 0, limit=30, what="all slots released")
    assert canary.errors == [] and answered > 0 and gap < 2.0, (canary.errors, answered, gap)
    after_fds = await settle(open_fds, fds, limit=30)
    after_tasks = await settle(live_tasks, tasks, limit=30)
    assert greedy.metric("relay_connections_total", outcome="accepted") == accepted + 400 + 1  # and the canary
    assert after_fds <= fds, f"fds {fds} -> {after_fds}"
    assert after_tasks <= tasks, f"tasks {tasks} -> {after_tasks}"
    assert greedy.app.state.limits.per_user == {}
    assert greedy.metric("relay_open_connections", role="driver") == 0


async def test_ping_flood_without_reading_keeps_memory_bounded(greedy: RunningRelay) -> None:
    """A client that floods pings and never reads the pongs cannot make the relay buffer them without bound."""
    path = f"/fault/ack/realtime?fal_jwt_token={greedy.ticket(sub='pinger', apps=('fault/ack',))}"
    async with Canary(greedy) as canary:
        raw = await RawSocket.open(greedy, path)
        raw.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        batch = b"".join(client_frame(0x9, b"p" * 125) for _ in range(10_000))  # 1.3 MiB of pings
        before, sent = _rss(), 0
        try:
            for _ in range(40):
                raw.writer.write(batch)
                try:
                    async with asyncio.timeout(3):
                        await raw.writer.drain()
                except TimeoutError:
                    break  # the relay stopped reading: backpressure, as it should be
                sent += len(batch)
            await asyncio.sleep(0.5)
            grown = _rss() - before
            await canary.wait_answers(3)
        finally:
            raw.close()
    assert grown < 16 * 1024 * 1024, f"RSS grew {grown / 2**20:.1f} MiB while {sent / 2**20:.1f} MiB of pings came in"


async def test_never_reading_client_is_let_go(make_relay) -> None:
    """A client that never reads is dropped once its writes stall past the send timeout: no task or socket lingers."""
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS, idle_timeout=1.0,
                                                   send_timeout=2.0) as relay:
        await _round_trip(relay, "warm-up")
        fds, tasks = await settle(open_fds, 0, limit=1), await settle(live_tasks, 0, limit=1)
        sloths = []
        for n in range(5):
            sloth = await RawSocket.open(relay, f"/fault/echo/realtime?fal_jwt_token="
                                                f"{relay.ticket(sub=f'sloth-{n}', apps=FAULT_APPS)}")
            sloth.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sloth.writer.write(client_frame(0x2, pack(seq=n, size=256 * 1024, count=100)))
            sloths.append(sloth)
        try:
            # The sloths' own five sockets stay open in this process; the relay's side of them must go.
            after_tasks = await settle(live_tasks, tasks, limit=15)
            after_fds = await settle(open_fds, fds + 5, limit=15)
        finally:
            for sloth in sloths:
                sloth.close()
    assert after_tasks <= tasks, f"{after_tasks - tasks} handler tasks still wait on clients that never read"
    assert after_fds <= fds + 5, f"{after_fds - fds - 5} relay sockets still held for clients that never read"


async def test_client_that_stops_reading_is_told_why(make_relay) -> None:
    """A client goes on sending but reads nothing: after the send timeout the relay queues CLIENT_TOO_SLOW
    and its close behind the unread frames, so the client, reading again in time, learns why it was let go."""
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS,
                                                   send_timeout=1.0) as relay:
        raw = await RawSocket.open(relay, f"/fault/echo/realtime?fal_jwt_token={relay.ticket(apps=FAULT_APPS)}")
        try:
            raw.writer.write(client_frame(0x2, pack(seq=1, size=256 * 1024, count=60)))
            await asyncio.sleep(1.8)  # past the send timeout, within the 2 s the relay waits for our close
            frames = []
            while (frame := await raw.next_frame(limit=5)) is not None:
                frames.append(frame)
        finally:
            raw.close()
        errors = relay.metric("relay_errors_total", code="CLIENT_TOO_SLOW")
    opcodes = [opcode for opcode, _ in frames]
    assert opcodes[-2:] == [0x1, 0x8], opcodes[-5:]
    error = json.loads(frames[-2][1])
    assert error["error"] == "CLIENT_TOO_SLOW"
    assert error["reason"] == "nothing was read for 1 s while frames waited; reconnect when ready"
    assert struct.unpack("!H", frames[-1][1][:2])[0] == CloseCode.TRY_AGAIN_LATER
    assert set(opcodes[:-2]) == {0x2} and len(frames) - 2 < 60  # whole frames, and some were skipped
    assert errors == 1


async def test_a_frame_parked_for_a_stalled_client_never_follows_the_close(make_relay) -> None:
    """A client stops reading while frames pour in, and idles out: when it reads again it finds
    whole frames, then the x-fal-error, then the close, and nothing after it."""
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS,
                                                   idle_timeout=1.0) as relay:
        raw = await RawSocket.open(relay, f"/fault/echo/realtime?fal_jwt_token={relay.ticket(apps=FAULT_APPS)}")
        try:
            raw.writer.write(client_frame(0x2, pack(seq=1, size=256 * 1024, count=40)))
            await asyncio.sleep(2.0)  # not reading: frames are parked, then the idle timeout closes
            frames = []
            while (frame := await raw.next_frame(limit=5)) is not None:
                frames.append(frame)
        finally:
            raw.close()
    opcodes = [opcode for opcode, _ in frames]
    assert opcodes[-2:] == [0x1, 0x8], opcodes[-5:]  # x-fal-error, close: the last two frames
    assert json.loads(frames[-2][1])["error"] == "TIMEOUT"
    assert set(opcodes[:-2]) == {0x2} and all(len(payload) > 256 * 1024 for _, payload in frames[:-2])
