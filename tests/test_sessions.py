"""Live sessions: one driver, many viewers, each viewer on its own latest-frame-wins outbox."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack

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


async def test_fifty_viewers_receive_the_drivers_frames(make_relay) -> None:
    """Every viewer receives the very frames the driver receives, byte for byte."""
    async with make_relay(max_connections_per_user=60) as relay, AsyncExitStack() as stack:
        driver_ticket, viewer_ticket = _tickets(relay)
        driver = await stack.enter_async_context(websockets.connect(relay.url(ticket=driver_ticket)))
        viewers = [await stack.enter_async_context(websockets.connect(relay.url(ticket=viewer_ticket)))
                   for _ in range(50)]
        for seed in (1, 2):
            await driver.send(pack(prompt="shared picture", seed=seed))
            expected = await driver.recv()
            received = await asyncio.gather(*(viewer.recv() for viewer in viewers))
            assert all(frame == expected for frame in received)
        assert relay.app.state.metrics.registry.get_sample_value("relay_viewers_per_session_count") == 50


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


async def test_driver_leaving_ends_the_session_for_all(relay: RunningRelay) -> None:
    """Viewers are told with an x-fal-message and closed with 4004 when the driver leaves."""
    driver_ticket, viewer_ticket = _tickets(relay)
    driver = await websockets.connect(relay.url(ticket=driver_ticket))
    viewers = [await websockets.connect(relay.url(ticket=viewer_ticket)) for _ in range(3)]
    await driver.close()
    for viewer in viewers:
        notice = await _notice(viewer)
        assert notice == {"type": "x-fal-message", "action": "session_ended",
                          "reason": "the driver left; this live session has ended"}
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await viewer.recv()
        assert closed.value.rcvd.code == CloseCode.SESSION_ENDED
    await asyncio.sleep(0.05)
    assert relay.app.state.sessions.sessions == {}


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
    """A viewer that never reads skips frames; the driver and a healthy viewer get every frame."""
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS) as relay:
        driver_ticket, viewer_ticket = _tickets(relay, apps=FAULT_APPS)
        app_url = relay.url("fault/echo", ticket=viewer_ticket)
        async with websockets.connect(relay.url("fault/echo", ticket=driver_ticket)) as driver, \
                websockets.connect(app_url, max_queue=1, close_timeout=0.5), \
                websockets.connect(app_url) as healthy:
            rounds = 40
            for seq in range(rounds):
                await driver.send(pack(seq=seq, size=256 * 1024))
                assert (await next_frame(driver))["echo"] == seq
                assert (await next_frame(healthy))["echo"] == seq
            dropped = relay.metric("relay_viewer_frames_dropped_total")
            assert dropped > 0, "the stalled viewer should have skipped frames"
            (session,) = relay.app.state.sessions.sessions.values()
            assert all(len(outbox._frames) <= 2 for outbox in session.viewers)
