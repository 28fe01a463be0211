"""Live sessions: one driver's frames fanned out to many viewers on this replica.

A ticket with `session` and `role: driver` opens a session; tickets for the same session (and
issuer) with `role: viewer` watch it. Viewers get the driver's frames as the very same bytes
objects, each through its own two-frame `Outbox`, so a slow viewer skips frames and never slows
the driver or the others. A viewer that joins late gets the latest frame at once; one that joins
early waits for the driver. When the driver leaves, every viewer is told and closed.
Sessions live only on the replica holding the driver: a load balancer routes viewers there by
the `session` query parameter (see README, "Live sessions").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from . import protocol
from .metrics import Metrics
from .protocol import RelayError
from .settings import Settings
from .tickets import Ticket

SessionKey = tuple[str, str]  # (ticket issuer, session id): two backends never share a session
Frame = bytes | str


class OutboxClosed(Exception):
    """Raised by `Outbox.get` once the outbox is closed and empty."""


class Outbox:
    """Frames waiting for one receiver; beyond `size`, the oldest is dropped (latest frame wins)."""

    def __init__(self, size: int = 2) -> None:
        self._frames: deque[Frame] = deque()
        self._size = size
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, frame: Frame) -> bool:
        """Queue `frame`; return True when an older frame had to be dropped for it."""
        dropped = len(self._frames) >= self._size
        if dropped:
            self._frames.popleft()
        self._frames.append(frame)
        self._ready.set()
        return dropped

    async def get(self) -> Frame:
        while not self._frames:
            if self._closed:
                raise OutboxClosed
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def close(self) -> None:
        """No more frames will come; `get` raises `OutboxClosed` once the queued ones are taken."""
        self._closed = True
        self._ready.set()


async def first_completed(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run the halves of a viewer's connection until the first ends; cancel the rest; re-raise what ended it."""
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, WebSocketDisconnect, RelayError):
                await task
    for task in done:
        task.result()


@dataclass
class LiveSession:
    key: SessionKey
    app: str
    metrics: Metrics
    driver_sub: str | None = None
    viewers: set[Outbox] = field(default_factory=set)
    last_frame: bytes | None = None

    def publish(self, frame: Frame) -> None:
        """Hand one upstream frame to every viewer; binary frames are kept for late joiners."""
        if isinstance(frame, bytes):
            self.last_frame = frame
        for outbox in self.viewers:
            if outbox.put(frame):
                self.metrics.viewer_dropped.inc()

    def end(self) -> None:
        for outbox in self.viewers:
            outbox.close()


class SessionHub:
    """The live sessions of this replica, with the per-session and per-user limits."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions: dict[SessionKey, LiveSession] = {}
        self._driven: dict[str, int] = {}

    def _session(self, ticket: Ticket, app: str) -> LiveSession:
        assert ticket.session is not None
        key = (ticket.issuer, ticket.session)
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = LiveSession(key=key, app=app, metrics=self.metrics)
        elif session.app != app:
            raise protocol.AppNotAllowed(f"live session runs {session.app}, not {app}")
        return session

    def _release(self, session: LiveSession) -> None:
        if session.driver_sub is None and not session.viewers and self.sessions.get(session.key) is session:
            del self.sessions[session.key]

    @contextmanager
    def drive(self, ticket: Ticket, app: str) -> Iterator[LiveSession]:
        """Hold the driver's seat of the ticket's session while the block runs."""
        session = self._session(ticket, app)
        if session.driver_sub is not None:
            raise protocol.SessionBusy("this live session already has a driver; join it as a viewer")
        driven = self._driven.get(ticket.sub, 0)
        if driven >= self.settings.max_sessions_per_user:
            self._release(session)
            raise protocol.TooManyConnections(
                f"you already drive {self.settings.max_sessions_per_user} live sessions; end one first"
            )
        session.driver_sub = ticket.sub
        self._driven[ticket.sub] = driven + 1
        self.metrics.sessions.inc()
        try:
            yield session
        finally:
            self.metrics.sessions.dec()
            self._driven[ticket.sub] -= 1
            if not self._driven[ticket.sub]:
                del self._driven[ticket.sub]
            session.driver_sub = None
            session.end()
            session.viewers.clear()
            self._release(session)

    @contextmanager
    def watch(self, ticket: Ticket, app: str) -> Iterator[tuple[LiveSession, Outbox]]:
        """Join the ticket's session as a viewer with an outbox of its own."""
        session = self._session(ticket, app)
        if len(session.viewers) >= self.settings.max_viewers_per_session:
            self._release(session)
            raise protocol.TooManyConnections(
                f"this live session has its limit of {self.settings.max_viewers_per_session} viewers"
            )
        outbox = Outbox()
        if session.last_frame is not None:
            outbox.put(session.last_frame)
        session.viewers.add(outbox)
        self.metrics.viewers.observe(len(session.viewers))
        try:
            yield session, outbox
        finally:
            session.viewers.discard(outbox)
            self._release(session)


async def watch(websocket: WebSocket, session: LiveSession, outbox: Outbox, metrics: Metrics) -> None:
    """Send a viewer its session's frames until the driver leaves; refuse anything it sends."""
    if session.driver_sub is None:
        await websocket.send_text(protocol.message_frame("session_waiting", reason="waiting for the driver"))

    async def read() -> None:
        message = await websocket.receive()
        if message["type"] != "websocket.disconnect":
            raise protocol.ViewerReadOnly("viewers of a live session cannot send inputs; only the driver can")

    async def write() -> None:
        while True:
            try:
                frame = await outbox.get()
            except OutboxClosed:
                raise protocol.SessionEnded("the driver left; this live session has ended") from None
            if isinstance(frame, bytes):
                await websocket.send_bytes(frame)
            else:
                await websocket.send_text(frame)
            metrics.counts.frames_out += 1

    await first_completed(read(), write())
