"""A spliced client connection: its `State`, the error that ends it, and the closing handshake.

What a driver (`relay.Relay`) and a live session's viewer (`sessions.Viewer`) share. Once
accepted, the client's socket is spliced (`splice`): its reads go to a `ClientToUpstream` whose
hooks the subclass implements, inside read callbacks, so the hooks only set state and wake the
connection's task; `SplicedConnection._close` alone turns the error into the x-fal-error and the
close the client gets, and waits for the client's closing frame as RFC 6455 asks.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any

from starlette.websockets import WebSocket

from . import frames, protocol, splice
from .protocol import RelayError
from .serving import SPLICE_EXTENSION, SplicedClient
from .settings import Settings

logger = logging.getLogger(__name__)


def as_relay_error(exc: Exception) -> RelayError:
    """What a broken splice direction means for the client: the peer's error as the codec or a check
    raised it (a client's own code, or UPSTREAM_ERROR), or a bug (logged; the client is only told
    to reconnect)."""
    if isinstance(exc, RelayError):
        return exc
    logger.error("relay failed", exc_info=exc)
    return protocol.RelayError("the relay failed; please reconnect")


class State(enum.Enum):
    """A spliced connection's life, as websockets' `State` with who closed first told apart:

    OPEN -> CLOSING (the relay's close frame is out) -> CLOSED (the client's came back, or it cannot);
    OPEN -> CLIENT_CLOSED (the client's close frame came first) -> CLOSED (the relay's answered it);
    any -> CLOSED when the socket is gone. `SplicedConnection._enter` is the one place it changes.
    """

    OPEN = "open"
    CLIENT_CLOSED = "client closed"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS = {
    State.OPEN: {State.CLIENT_CLOSED, State.CLOSING, State.CLOSED},
    State.CLIENT_CLOSED: {State.CLOSED},
    State.CLOSING: {State.CLOSED},
    State.CLOSED: set(),
}


class SplicedConnection:
    """What a driver (`Relay`) and a live session's viewer (`sessions.Viewer`) share: a spliced client
    socket read by `from_client` (whose hooks the subclass implements), its `State`, the error that ends
    it, the event that wakes the task waiting on it, and the closing handshake. Hooks run inside read
    callbacks, so they only set state and wake the task; `_close` alone turns the error into the
    x-fal-error and the close the client gets."""

    from_client: splice.ClientToUpstream  # set by the subclass

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = State.OPEN
        self.error: RelayError | None = None
        self.client: SplicedClient | None = None
        self._wake = asyncio.Event()
        # How long the connection may live and the error it then ends with: app.py shortens it to
        # the ticket's expiry (TicketExpired) when that comes before RELAY_MAX_SESSION_SECONDS.
        self.lifetime = settings.max_session_seconds
        self.lifetime_error: RelayError | None = None

    @property
    def _closing(self) -> bool:
        """The relay's close frame is out (or the socket is gone): nothing more may be written."""
        return self.state is State.CLOSING or self.state is State.CLOSED

    def _enter(self, state: State) -> None:
        if state not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"a spliced connection cannot go from {self.state.value} to {state.value}")
        self.state = state

    async def _accept(self, websocket: WebSocket) -> SplicedClient:
        """Accept, and splice the socket to `from_client` at once (no await may come between the two)."""
        await websocket.accept()
        client: SplicedClient = websocket.scope["extensions"][SPLICE_EXTENSION]["start"](self.from_client.feed)
        self.client = client
        client.stalled.add_done_callback(self._stalled)
        return client

    def _expired(self) -> RelayError:
        return self.lifetime_error or protocol.SessionExpired(
            f"sessions last at most {self.settings.max_session_seconds:g} s; reconnect to go on")

    def _done(self, client: SplicedClient) -> bool:
        return (self.error is not None or self.state is not State.OPEN or client.lost.done()
                or client.shutdown.done())

    async def _wait(self, client: SplicedClient, *also: asyncio.Future[None]) -> None:
        """Until a hook wakes this task, or the client's socket (or any of `also`) goes; `_wake` is
        cleared by the caller before it checks whether to wait."""
        waiter: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([waiter, client.lost, client.shutdown, *also], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    def _close(self, client: SplicedClient, inside_message: bool = False) -> None:
        """Send the close the connection ends with: its error, 1012 at shutdown (which invites a
        reconnect), else 1000. The socket then waits for the client's closing frame (see
        `on_client_close`) unless the client already sent it or can no longer be read.

        `inside_message`: part of an upstream message went out and the rest never will. No data frame
        may follow (a browser fails that as a protocol error, 1002), a control frame may: the close
        alone goes out, its reason `CODE: reason` instead of the x-fal-error."""
        if self._closing:  # already sent, or nothing left to send it on
            return
        if client.lost.done():
            self._enter(State.CLOSED)
            return
        answering = self.state is State.CLIENT_CLOSED
        error = self.error
        if error is not None and inside_message:
            client.close(error.close_code, protocol.close_reason(f"{error.error.value}: {error.reason}"))
        elif error is not None:
            client.close(error.close_code, protocol.close_reason(error.reason), error.frame())
        elif client.shutdown.done():
            client.close(protocol.CloseCode.SERVICE_RESTART, "the relay is restarting; reconnect")
        else:
            client.close(protocol.CloseCode.NORMAL_CLOSURE)
        if answering or not self.from_client.discard_until_close():
            self._enter(State.CLOSED)
            client.transport.close()
        else:
            self._enter(State.CLOSING)

    def _set_error(self, exc: RelayError) -> None:
        if self.error is None:
            self.error = exc
        self._wake.set()

    def _fail(self, exc: Exception) -> None:
        """A splice direction broke."""
        self._set_error(as_relay_error(exc))

    def _stalled(self, _: object) -> None:
        self._set_error(protocol.ClientTooSlow(
            f"nothing was read for {self.settings.send_timeout:g} s while frames waited; reconnect when ready"))

    def on_client_ping(self, payload: bytes) -> None:
        """splice.ClientHooks: keepalive is per hop, so the relay answers the client's pings itself."""
        if self.client is not None and not self._closing and not self.client.transport.is_closing():
            self._write_control(frames.frame_header(frames.OP_PONG, len(payload)) + payload)

    def _write_control(self, frame: bytes) -> None:
        """Write a control frame of the relay's own; a driver's goes between upstream frames (`Relay`)."""
        assert self.client is not None
        self.client.transport.write(frame)

    def on_client_close(self, payload: bytes) -> None:
        """splice.ClientHooks: the client's closing frame, before or after the relay's."""
        if self.state is State.OPEN:
            self._enter(State.CLIENT_CLOSED)
        elif self.state is State.CLOSING:
            self._enter(State.CLOSED)
            if self.client is not None:
                self.client.transport.close()
        self._wake.set()
