"""Live sessions: one driver, many viewers, each viewer spliced with latest frame wins."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from contextlib import AsyncExitStack
from typing import Any

import pytest
import websockets

from realtime_server.protocol import CloseCode

from .conftest import RunningRelay, expect_error, next_frame, pack
from .upstreams import FAULT_APPS, fault_upstream


def _tickets(relay: RunningRelay, session: str = "thread-1", apps=("local/preview",)) -> tuple[str, str]:
    driver = relay.ticket(sub="driver", apps=apps, session=session, role="driver")
    viewer = relay.ticket(sub="viewer", apps=apps, session=session, role="viewer")
    return driver, viewer


async def _notice(ws: websockets.ClientConnection) -> dict:
    async with asyncio.timeout(5):
        frame = await ws.recv()
    assert isinstance(frame, str)
    return json.loads(frame)


class WriteLog:
    """Stands in front of a viewer's real transport and notes the identity of every object written."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.objects: list[int] = []

    def write(self, data: bytes) -> None:
        self.objects.append(id(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def test_fifty_viewers_receive_the_drivers_frames(make_relay) -> None:
    """Every viewer receives the very frames the driver receives, byte for byte, and the relay writes
    one and the same bytes object to every viewer's socket: each frame is framed once, not per viewer."""
    async with make_relay(max_connections_per_user=60) as relay, AsyncExitStack() as stack:
        driver_ticket, viewer_ticket = _tickets(relay)
        driver = await stack.enter_async_context(websockets.connect(relay.url(ticket=driver_ticket)))
        viewers = [await stack.enter_async_context(websockets.connect(relay.url(ticket=viewer_ticket)))
                   for _ in range(50)]
        (session,) = relay.app.state.sessions.sessions.values()
        logs = []
        for seed in (0, 1, 2):
            await driver.send(pack(prompt="shared picture", seed=seed))
            expected = await driver.recv()
            received = await asyncio.gather(*(viewer.recv() for viewer in viewers))
            assert all(frame == expected for frame in received)
            if not logs:  # every viewer is spliced now that it has had a frame: watch what is written
                for seat in session.viewers:
                    seat.client.sink.transport = WriteLog(seat.client.sink.transport)
                    logs.append(seat.client.sink.transport)
        assert relay.metric("relay_session_viewers") == relay.metric("relay_session_viewers_max") == 50
    assert len(logs) == 50
    assert all(len(log.objects) == 2 for log in logs)
    assert len({log.objects[0] for log in logs}) == 1 and len({log.objects[1] for log in logs}) == 1


async def test_viewers_get_the_drivers_messages(make_relay) -> None:
    """The driver's x-fal-message frames (timings) reach the viewers too, in order with the frames."""
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS) as relay:
        driver_ticket, viewer_ticket = _tickets(relay, apps=FAULT_APPS)
        async with websockets.connect(relay.url("fault/echo", ticket=driver_ticket)) as driver, \
                websockets.connect(relay.url("fault/echo", ticket=viewer_ticket)) as viewer:
            await driver.send(pack(seq=0))
            await driver.recv()
            assert (await next_frame(viewer))["echo"] == 0  # it has joined
            await driver.send(pack(seq=1, note="inference 12 ms"))
            seen = {"driver": [await driver.recv(), await driver.recv()],
                    "viewer": [await viewer.recv(), await viewer.recv()]}
    for frames in seen.values():
        assert json.loads(frames[0]) == {"type": "x-fal-message", "action": "timings", "note": "inference 12 ms"}
        assert isinstance(frames[1], bytes)
    assert seen["driver"] == seen["viewer"]


async def test_viewer_inputs_are_refused(relay: RunningRelay) -> None:
    """A viewer that sends an input gets VIEWER_READ_ONLY; the driver carries on."""
    driver_ticket, viewer_ticket = _tickets(relay)
    async with websockets.connect(relay.url(ticket=driver_ticket)) as driver:
        async with websockets.connect(relay.url(ticket=viewer_ticket)) as viewer:
            await viewer.send(pack(prompt="let me drive"))
            payload = await expect_error(viewer, "VIEWER_READ_ONLY", CloseCode.POLICY_VIOLATION)
        assert payload["reason"] == "viewers of a live session cannot send inputs; only the driver can"
        await driver.send(pack(prompt="still driving", seed=3))
        assert (await next_frame(driver))["seed"] == 3


async def test_viewers_wait_when_the_driver_leaves(relay: RunningRelay) -> None:
    """A driver leaving is a normal pause, not an end: viewers stay connected, are told the session
    waits, and a viewer joining meanwhile gets the last picture and the same notice."""
    driver_ticket, viewer_ticket = _tickets(relay)
    driver = await websockets.connect(relay.url(ticket=driver_ticket))
    viewers = [await websockets.connect(relay.url(ticket=viewer_ticket)) for _ in range(3)]
    await driver.send(pack(prompt="kept", seed=7))
    picture = await driver.recv()
    for viewer in viewers:
        assert await viewer.recv() == picture
    await driver.close()
    for viewer in viewers:
        assert await _notice(viewer) == {"type": "x-fal-message", "action": "session_waiting",
                                         "reason": "the driver left; waiting for them to draw again"}
    async with websockets.connect(relay.url(ticket=viewer_ticket)) as late:
        assert await late.recv() == picture
        assert (await _notice(late))["action"] == "session_waiting"
    for viewer in viewers:
        assert viewer.state is websockets.protocol.State.OPEN
        await viewer.close()
    await asyncio.sleep(0.05)
    assert relay.app.state.sessions.sessions == {}


async def test_pen_passes_to_another_driver_without_viewers_reconnecting(relay: RunningRelay) -> None:
    """The driver hands over: the next driver (another user) takes the seat, the viewers that stayed
    connected are told who drives and get its frames; while the first holds the seat the second is busy."""
    first = relay.ticket(sub="alice", apps=("local/preview",), session="thread-1", role="driver")
    second = relay.ticket(sub="bob", apps=("local/preview",), session="thread-1", role="driver")
    _, viewer_ticket = _tickets(relay)
    async with websockets.connect(relay.url(ticket=viewer_ticket)) as viewer:
        assert (await _notice(viewer))["action"] == "session_waiting"
        alice = await websockets.connect(relay.url(ticket=first))
        assert await _notice(viewer) == {"type": "x-fal-message", "action": "session_live", "driver": "alice"}
        async with websockets.connect(relay.url(ticket=second)) as early_bob:
            await expect_error(early_bob, "SESSION_BUSY", CloseCode.TRY_AGAIN_LATER)
        await alice.send(pack(prompt="alice draws", seed=1))
        assert (await next_frame(viewer))["seed"] == 1
        await alice.close()
        assert (await _notice(viewer))["action"] == "session_waiting"
        async with websockets.connect(relay.url(ticket=second)) as bob:
            assert await _notice(viewer) == {"type": "x-fal-message", "action": "session_live", "driver": "bob"}
            await bob.send(pack(prompt="bob draws", seed=2))
            assert (await next_frame(bob))["seed"] == 2
            assert (await next_frame(viewer))["seed"] == 2


async def test_late_viewer_gets_latest_frame_at_once(relay: RunningRelay) -> None:
    """A viewer joining mid-session receives the latest frame without waiting for the next input."""
    driver_ticket, viewer_ticket = _tickets(relay)
    async with websockets.connect(relay.url(ticket=driver_ticket)) as driver:
        await driver.send(pack(prompt="first", seed=1))
        await driver.recv()
        await driver.send(pack(prompt="second", seed=2))
        latest = await driver.recv()
        async with websockets.connect(relay.url(ticket=viewer_ticket)) as viewer:
            async with asyncio.timeout(2):
                assert await viewer.recv() == latest


async def test_early_viewer_waits_for_the_driver(relay: RunningRelay) -> None:
    """A viewer that arrives first is told it waits, then gets frames once the driver drives."""
    driver_ticket, viewer_ticket = _tickets(relay)
    async with websockets.connect(relay.url(ticket=viewer_ticket)) as viewer:
        assert (await _notice(viewer))["action"] == "session_waiting"
        async with websockets.connect(relay.url(ticket=driver_ticket)) as driver:
            assert (await _notice(viewer))["action"] == "session_live"
            await driver.send(pack(prompt="now", seed=4))
            assert (await next_frame(viewer))["seed"] == 4


async def test_viewer_of_another_session_sees_nothing(relay: RunningRelay) -> None:
    """Frames of one session never reach a viewer of another."""
    driver_ticket, _ = _tickets(relay, session="thread-1")
    _, stranger_ticket = _tickets(relay, session="thread-2")
    async with websockets.connect(relay.url(ticket=driver_ticket)) as driver, \
            websockets.connect(relay.url(ticket=stranger_ticket)) as stranger:
        assert (await _notice(stranger))["action"] == "session_waiting"
        await driver.send(pack(prompt="private", seed=5))
        await driver.recv()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await stranger.recv()


async def test_session_query_must_match_ticket(relay: RunningRelay) -> None:
    """The routing hint `?session=` cannot point a ticket at another session."""
    _, viewer_ticket = _tickets(relay, session="thread-1")
    async with websockets.connect(relay.url(ticket=viewer_ticket, session="thread-9")) as ws:
        payload = await expect_error(ws, "BAD_REQUEST", CloseCode.POLICY_VIOLATION)
    assert payload["reason"] == "the session query parameter does not match the ticket's session"


async def test_session_limits(make_relay) -> None:
    """A second driver, too many viewers, too many sessions per user: each refused with its reason."""
    async with make_relay(max_viewers_per_session=1, max_sessions_per_user=1) as relay:
        driver_ticket, viewer_ticket = _tickets(relay)
        async with websockets.connect(relay.url(ticket=driver_ticket)):
            async with websockets.connect(relay.url(ticket=driver_ticket)) as second:
                payload = await expect_error(second, "SESSION_BUSY", CloseCode.TRY_AGAIN_LATER)
            assert payload["reason"] == "this live session already has a driver; join it as a viewer"
            other_ticket, _ = _tickets(relay, session="thread-2")
            async with websockets.connect(relay.url(ticket=other_ticket)) as other:
                payload = await expect_error(other, "TOO_MANY_CONNECTIONS", CloseCode.TRY_AGAIN_LATER)
            assert payload["reason"] == "you already drive 1 live sessions; end one first"
            async with websockets.connect(relay.url(ticket=viewer_ticket)):
                async with websockets.connect(relay.url(ticket=viewer_ticket)) as extra:
                    payload = await expect_error(extra, "TOO_MANY_CONNECTIONS", CloseCode.TRY_AGAIN_LATER)
                assert payload["reason"] == "this live session has its limit of 1 viewers"


async def test_stalled_viewer_slows_no_one(make_relay) -> None:
    """A viewer that never reads skips frames; the driver and a healthy viewer get every frame, as fast
    as before it came (round times compared within this run), and what the relay holds for it stays
    bounded however long the run."""
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS,
                                                   max_inputs_per_second=1000) as relay:
        driver_ticket, viewer_ticket = _tickets(relay, apps=FAULT_APPS)
        app_url = relay.url("fault/echo", ticket=viewer_ticket)
        async with websockets.connect(relay.url("fault/echo", ticket=driver_ticket)) as driver, \
                websockets.connect(app_url) as healthy:
            async def round_trip(seq: int) -> float:
                started = time.perf_counter()
                await driver.send(pack(seq=seq, size=256 * 1024))
                assert (await next_frame(driver))["echo"] == seq
                assert (await next_frame(healthy))["echo"] == seq
                return time.perf_counter() - started

            before = [await round_trip(seq) for seq in range(20)]
            async with websockets.connect(app_url, max_queue=1, close_timeout=0.5) as stalled:
                stalled.transport.pause_reading()  # reads nothing from here on
                during = [await round_trip(20)]  # by its end the stalled viewer is spliced
                (session,) = relay.app.state.sessions.sessions.values()
                (stalled_seat,) = [seat for seat in session.viewers if seat.client.transport.get_extra_info(
                    "peername") == stalled.transport.get_extra_info("sockname")]
                held = []
                for seq in range(21, 80):
                    during.append(await round_trip(seq))
                    sink = stalled_seat.client.sink
                    held.append(sink.transport.get_write_buffer_size() + len(sink.parked or b""))
                dropped = relay.metric("relay_viewer_frames_dropped_total")
        skipped = relay.metric("relay_viewer_skipped_frames_sum")
    assert dropped > 0, "the stalled viewer should have skipped frames"
    assert skipped == dropped  # counted for the one viewer that skipped them, once it left
    assert statistics.median(during) < 2 * statistics.median(before) + 0.002, (before, during)
    # The socket's buffer fills up early; after that the relay holds at most one parked frame more.
    frame = 256 * 1024 + 64
    assert max(held[30:]) <= max(held[:30]) + frame, held
