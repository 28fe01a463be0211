"""A client's socket as the splice writes to it: latest frame wins while the client reads slowly.

While the transport is paused (its buffer is over the high-water mark), the newest whole output
is parked instead of written and an older parked one is dropped, so a slow client skips frames
and the relay's memory stays flat; when the transport drains, the parked frame goes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Writer(Protocol):
    """The part of `asyncio.Transport` a splice writes to."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...


@dataclass(eq=False)
class Sink:
    """A client's transport and its latest-frame-wins state.

    `forward_from` and `parking` belong to the read being fed (`UpstreamToClients`): where this
    client's unwritten run of forwarded bytes starts in it, and the output being collected whole to
    be parked instead.
    """

    transport: Writer
    paused: bool = False  # set from the transport's protocol: pause_writing / resume_writing
    parked: bytes | None = None  # newest whole frame waiting for the transport to drain
    dropped: int = 0  # outputs skipped for a newer one
    written: int = 0  # frames written (outputs and forwarded text)
    forward_from: int | None = None  # offset in the current read of bytes due to this client, not yet written
    parking: bytearray | None = None  # an output arriving while congested, collected to be parked
    _counted: tuple[int, int] = (0, 0)  # (written, dropped) as of the last `take_counts`

    def congested(self) -> bool:
        """Paused with bytes still queued. The flag alone can be stale: the loop may deliver the next
        upstream read before the write-ready event that calls `resume_writing`, and parking a frame
        then would cost a copy and a loop turn for nothing."""
        if not self.paused:
            return False
        backlog = getattr(self.transport, "get_write_buffer_size", None)
        if backlog is None or backlog():
            return True
        self.paused = False
        if self.parked is not None:  # a newer frame is starting: the parked one is stale
            self.parked = None
            self.dropped += 1
        return False

    def park(self, frame: bytes) -> None:
        """Hold a whole frame until the transport drains; one parked before it is dropped (latest wins)."""
        if self.parked is not None:
            self.dropped += 1
        self.parked = frame

    def offer(self, frame: bytes, output: bool) -> None:
        """Write one whole frame now; while congested, park it if it is an output, else skip it."""
        if not self.congested():
            self.transport.write(frame)
            self.written += 1
        elif output:
            self.park(frame)
        else:
            self.dropped += 1

    def resume(self) -> None:
        """The transport drained: the parked frame, if any, goes out."""
        self.paused = False
        if self.parked is not None:
            frame, self.parked = self.parked, None
            self.transport.write(frame)
            self.written += 1

    def flush_forwarded(self, data: bytes, end: int) -> None:
        """Write this client's run of forwarded bytes in `data`, up to `end`: the whole read as received
        when the run is all of it (no copy), else a view of the run."""
        start = self.forward_from
        if start is None:
            return
        self.forward_from = None
        if start == 0 and end == len(data):
            self.transport.write(data)
        elif end > start:
            self.transport.write(memoryview(data)[start:end])

    def take_counts(self) -> tuple[int, int]:
        """Frames written and dropped since the last call, for the owner to add to its metrics."""
        written, dropped = self._counted
        self._counted = (self.written, self.dropped)
        return self.written - written, self.dropped - dropped
