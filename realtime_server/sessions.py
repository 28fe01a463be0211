"""Live sessions: one driver's frames fanned out to many viewers on this replica.

A ticket with `session` and `role: driver` opens a session; tickets for the same session (and
issuer) with `role: viewer` watch it. Viewers are spliced like drivers (`splice`): each frame
the driver's upstream sends is copied out of the stream once, as its own bytes (header and
payload, as upstream framed it), and that one bytes object is written to every viewer's socket.
A viewer whose socket is full gets the newest frame parked instead (at most one frame held per
viewer), so it skips frames and never slows the driver or the others. A viewer that joins late
gets the latest frame at once; one that joins early waits for the driver. When the driver
leaves (a reload, another thread, a pen handed to a viewer), the viewers stay: they are told the
session waits, keep the last picture, and are told again when a driver takes the seat, so a normal
end is never an error and a new driver never makes them reconnect. Sessions live only on the
replica holding the driver: a load balancer routes viewers there by the `session` query parameter
(see README, "Live sessions").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.websockets import WebSocket

from . import frames, protocol, splice
from .connection import SplicedConnection
from .metrics import Metrics
from .protocol import RelayError
from .serving import SplicedClient
from .settings import Settings
from .tickets import Ticket

SessionKey = tuple[str, str]  # (ticket issuer, session id): two backends never share a session


def _text_frame(text: str) -> bytes:
    body = text.encode()
    return frames.frame_header(frames.OP_TEXT, len(body)) + body


def _waiting(reason: str) -> bytes:
    return _text_frame(protocol.message_frame("session_waiting", reason=reason))


class Viewer(SplicedConnection):
    """One viewer's socket: frames written whole (so the relay's own pongs never cut into one),
    latest frame wins while it is congested, and anything it sends besides pings and its close
    refused. Implements `splice.ClientHooks`."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        super().__init__(settings)
        self.counts = metrics.counts
        self.from_client = splice.ClientToUpstream(self, settings.max_frame_bytes, on_error=self._fail)
        self.skipped = 0  # frames this viewer skipped, once it has gone

    def deliver(self, frame: bytes, output: bool) -> None:
        """Write one of the driver's frames (the shared bytes object), or park it if the socket is full.

        A viewer whose socket closed while the driver's frame or notice was on its way is skipped: its
        task has not run yet, but uvloop's transport raises on a write after close."""
        client = self.client
        if client is None or self._closing or self.error is not None or client.transport.is_closing():
            return
        client.sink.offer(frame, output)
        self._publish_counts(client)

    def notify(self, notice: bytes) -> None:
        """Write a session notice (a framed x-fal-message); while congested it is parked like an
        output, so a newer frame may replace it but it is never skipped for nothing."""
        self.deliver(notice, output=True)

    def _publish_counts(self, client: SplicedClient) -> None:
        written, dropped = client.sink.take_counts()  # parked frames written on resume included
        self.counts.frames_out += written
        self.counts.dropped_viewers += dropped

    async def run(self, websocket: WebSocket, session: LiveSession) -> RelayError | None:
        """Accept, splice, show the session until it ends or the viewer goes; close with the reason."""
        client = await self._accept(websocket)
        try:
            if client.early_inputs:
                self.on_input(b"")
            if session.last_frame is not None:  # the picture so far, whether or not someone draws now
                self.deliver(session.last_frame, output=True)
            if session.driver_sub is None:
                self.notify(_waiting("waiting for the driver"))
            async with asyncio.timeout(self.lifetime):
                while not self._done(client):
                    self._wake.clear()
                    await self._wait(client)
        except TimeoutError:
            self._set_error(self._expired())
        except RelayError as exc:
            self._set_error(exc)
        finally:
            self._close(client)
            self._publish_counts(client)
            self.skipped = client.sink.dropped
            client.lost.add_done_callback(self._release)
        return self.error

    def _release(self, _: object = None) -> None:
        """Break the cycle through the splice hooks once the socket is gone (freed by refcounting)."""
        self.client = None
        del self.from_client

    # splice.ClientHooks

    def on_input(self, payload: bytes, text: bool = False) -> None:
        raise protocol.ViewerReadOnly("viewers of a live session cannot send inputs; only the driver can")


@dataclass(eq=False)
class DriverSeat:
    """One driver connection's hold on a session's seat. A takeover (the same user's renewed socket)
    holds the seat at once, so the older socket's frames stop reaching the viewers, but it has only
    taken over once it has relayed a frame: until then the older connection gets the seat back if the
    new one fails (upstream unavailable, an upstream error, a dropped socket)."""

    previous: DriverSeat | None = None  # the connection this one took over from, until it relays a frame
    gone: bool = False  # the connection has left

    def fallback(self) -> DriverSeat | None:
        """The connection to give the seat back to if this one leaves now: the newest earlier one still here."""
        seat = self.previous
        while seat is not None and seat.gone:
            seat = seat.previous
        return seat


@dataclass
class LiveSession:
    key: SessionKey
    app: str
    driver_sub: str | None = None
    driver_key: tuple[str, str] | None = None  # (issuer, sub) of the driver
    holder: DriverSeat | None = None  # the driver's connection; a newer one of the same user takes it over
    viewers: set[Viewer] = field(default_factory=set)
    last_frame: bytes | None = None  # the latest output, framed, for viewers who join late; kept between drivers

    def publish(self, frame: bytes) -> None:
        """Hand one whole upstream frame, as upstream framed it, to every viewer."""
        output = frame[0] & 0x0F == frames.OP_BINARY
        if output:
            self.last_frame = frame
        for viewer in self.viewers:
            viewer.deliver(frame, output)

    def seat(self, sub: str, key: tuple[str, str], holder: DriverSeat) -> None:
        """A driver took the seat: viewers go from waiting to live without reconnecting."""
        self.driver_sub, self.driver_key, self.holder = sub, key, holder
        notice = _text_frame(protocol.message_frame("session_live", driver=sub))
        for viewer in self.viewers:
            viewer.notify(notice)

    def unseat(self) -> None:
        """The driver left: viewers stay, keep the last picture, and wait for the next driver."""
        self.driver_sub = self.driver_key = self.holder = None
        notice = _waiting("the driver left; waiting for them to draw again")
        for viewer in list(self.viewers):
            viewer.notify(notice)

    def publisher(self, holder: DriverSeat) -> Callable[[bytes], None]:
        """`publish` for one driver connection: its frames reach the viewers while it holds the seat;
        its first one completes a takeover."""

        def publish(frame: bytes) -> None:
            if self.holder is holder:
                holder.previous = None
                self.publish(frame)

        return publish


class SessionHub:
    """The live sessions of this replica, with the per-session and per-user limits."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions: dict[SessionKey, LiveSession] = {}
        self._driven: dict[tuple[str, str], int] = {}  # live sessions per user: (issuer, sub)
        metrics.session_viewers = self.viewer_counts

    def viewer_counts(self) -> Iterator[int]:
        """Viewers of each live session, for `/metrics` (which aggregates them: session ids are no labels)."""
        for session in self.sessions.values():
            yield len(session.viewers)

    def _session(self, ticket: Ticket, app: str) -> LiveSession:
        assert ticket.session is not None
        key = (ticket.issuer, ticket.session)
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = LiveSession(key=key, app=app)
        elif session.app != app:
            raise protocol.AppNotAllowed(f"live session runs {session.app}, not {app}")
        return session

    def _release(self, session: LiveSession) -> None:
        if session.driver_sub is None and not session.viewers and self.sessions.get(session.key) is session:
            del self.sessions[session.key]

    @contextmanager
    def drive(self, ticket: Ticket, app: str, takeover: bool = False) -> Iterator[Callable[[bytes], None]]:
        """Hold the driver's seat of the ticket's session while the block runs; yields its `publish`.

        With `takeover` (`?takeover=1`), the driver's own user connecting again takes the seat over
        without ending the session: that is the browser client moving to a fresh ticket before the
        relay ends the old one (TICKET_EXPIRED). Without it, a second driver gets SESSION_BUSY.
        """
        session = self._session(ticket, app)
        user = (ticket.issuer, ticket.sub)
        holder = DriverSeat()
        if session.driver_sub is not None:
            if not takeover or session.driver_key != user:
                raise protocol.SessionBusy("this live session already has a driver; join it as a viewer")
            holder.previous = session.holder
            session.holder = holder  # the older connection's frames no longer reach the viewers
        else:
            driven = self._driven.get(user, 0)
            if driven >= self.settings.max_sessions_per_user:
                self._release(session)
                raise protocol.TooManyConnections(
                    f"you already drive {self.settings.max_sessions_per_user} live sessions; end one first"
                )
            session.seat(ticket.sub, user, holder)
            self._driven[user] = driven + 1
            self.metrics.sessions.inc()
        try:
            yield session.publisher(holder)
        finally:
            holder.gone = True
            if session.holder is holder:  # not taken over by a newer connection of the same driver
                fallback = holder.fallback()
                if fallback is not None:  # a takeover that never relayed a frame: the seat goes back
                    session.holder = fallback
                else:
                    self._leave(session, user)

    def _leave(self, session: LiveSession, user: tuple[str, str]) -> None:
        """The driver holding the seat left: the viewers stay and wait for the next one."""
        self.metrics.sessions.dec()
        self._driven[user] -= 1
        if not self._driven[user]:
            del self._driven[user]
        try:
            session.unseat()
        finally:
            self._release(session)

    @contextmanager
    def watch(self, ticket: Ticket, app: str) -> Iterator[tuple[LiveSession, Viewer]]:
        """Take a viewer's seat in the ticket's session while the block runs."""
        session = self._session(ticket, app)
        if len(session.viewers) >= self.settings.max_viewers_per_session:
            self._release(session)
            raise protocol.TooManyConnections(
                f"this live session has its limit of {self.settings.max_viewers_per_session} viewers"
            )
        viewer = Viewer(self.settings, self.metrics)
        session.viewers.add(viewer)
        try:
            yield session, viewer
        finally:
            session.viewers.discard(viewer)
            self.metrics.viewer_skipped.observe(viewer.skipped)
            self._release(session)
