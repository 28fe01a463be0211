"""Frame splicing: WebSocket frames relayed between the client's and upstream's sockets as the bytes received.

Both directions run in the transports' `data_received` callbacks, with no task switch, queue or
allocation per frame on the fast path; the rules of the protocol live in the codec (`frames.py`),
one for both directions, and every header is checked there before a byte of its frame is relayed.

- `to_upstream.ClientToUpstream`: the client's inputs, unmasked once for the relay's checks and
  sent upstream under a fresh mask of the relay's own; newest input wins while upstream is busy.
- `to_clients.UpstreamToClients`: upstream's frames, written to the client unchanged (cut through
  read by read), text and control frames shown to the relay first, outputs copied for a live
  session's viewers.
- `sink.Sink`: a client's socket, latest frame wins while it reads slowly.

Keepalive is per hop: each side's pings go to a hook for the relay to answer, never through.
"""

from .sink import Sink, Writer
from .to_clients import MAP_MARKERS, MAX_UPSTREAM_MESSAGE, MAX_UPSTREAM_TEXT, UpstreamHooks, UpstreamToClients
from .to_upstream import ClientHooks, ClientToUpstream

__all__ = [
    "MAP_MARKERS", "MAX_UPSTREAM_MESSAGE", "MAX_UPSTREAM_TEXT", "ClientHooks", "ClientToUpstream", "Sink",
    "UpstreamHooks", "UpstreamToClients", "Writer",
]
