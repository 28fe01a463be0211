"""fal's idle TIMEOUT, absorbed: upstream ends an idle session and the client's connection goes on.

fal's realtime servers end a session that has had no input for a while with an x-fal-error
TIMEOUT (and a normal close). The client did nothing wrong and may send again at any moment, so
the relay does not pass the error on: the client stays, the upstream leg is dropped, and the next
input opens the next one. An input that went upstream just before and never got its answer is
sent again on the next leg, once and at once, so a client waiting for it is not left waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

from .splice import ClientToUpstream


@dataclass(eq=False)
class IdleUpstream:
    """Whether upstream has ended the current leg for want of input, and the one re-send it allows."""

    ended: bool = False  # upstream ended the leg; the next input (or the re-sent one) opens the next
    _resent: bytes | None = None  # the input last sent again: it never goes a third time

    def absorb(self, inputs: ClientToUpstream) -> None:
        """Upstream ended the leg: inputs wait for the next one, an unanswered input first, once."""
        self.ended = True
        inputs.upstream = None
        unanswered = inputs.unanswered
        if inputs.pending is None and unanswered is not None and unanswered is not self._resent:
            inputs.pending = self._resent = unanswered
        inputs.unanswered = None

    def leg_opened(self) -> None:
        self.ended = False
