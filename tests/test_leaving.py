"""A live session's driver and a viewer leaving at the same moment, on uvloop as `realtime-server` runs:
its transports raise on a write after close, where asyncio's only log."""

from __future__ import annotations

import asyncio
import logging

import uvloop
import websockets

from .conftest import pack
from .reliability import wait_for


def test_driver_and_viewer_closing_together_release_the_session(make_relay, caplog) -> None:
    """Both sockets aborted in one step, ten times over: the driver's leaving notifies a viewer whose socket
    has just closed, which is a no-op; no handler fails, and each session and its counts are released."""
    caplog.set_level(logging.INFO, logger="realtime_server")
    uvloop.run(_close_together(make_relay, caplog))


async def _close_together(make_relay, caplog) -> None:
    async with make_relay() as relay:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        hub = relay.app.state.sessions
        for round_ in range(10):
            session = f"together-{round_}"
            driver = await websockets.connect(relay.url(ticket=relay.ticket(sub="d", session=session, role="driver")))
            viewers = [await websockets.connect(relay.url(ticket=relay.ticket(sub="v", session=session,
                                                                              role="viewer")))
                       for _ in range(3)]
            await driver.send(pack(prompt="together", seed=round_, width=64, height=64))
            async with asyncio.timeout(10):
                await driver.recv()
                for viewer in viewers:
                    while not isinstance(await viewer.recv(), bytes):
                        pass
            for ws in (driver, *viewers):
                ws.transport.abort()
            await wait_for(lambda: not hub.sessions and relay.app.state.limits.total == 0, what="session released")
    failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert failed == []
    assert hub._driven == {} and relay.metric("relay_live_sessions") == 0
