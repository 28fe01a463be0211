"""The relay with parts of its per-frame work switched off, for `scripts/cpu-breakdown` only.

`RELAY_SWITCH_OFF` names what to skip (comma-separated); what a part costs is the relay's CPU per
frame with it minus without it, measured side by side. A relay started this way is not a relay: it
forwards unchecked inputs. It exists to measure, on loopback, and is never installed.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

import msgpack

from realtime_server import cli, protocol, relay, serving
from realtime_server.frames import FIN, OP_BINARY, apply_mask
from realtime_server.splice import ClientToUpstream

OFF = set(filter(None, os.environ.get("RELAY_SWITCH_OFF", "").split(",")))
PARTS = {
    "uvicorn-hop": "client reads reach the splice with no call through uvicorn's protocol object",
    "field-checks": "inputs are decoded (msgpack) but their field types and depth are not checked",
    "input-checks": "inputs are not decoded or checked at all",
    "input-hook": "no input hook: no checks, clock, rate limit, idle note or counters",
    "output-hook": "no output hook: no latency histogram, counters or sink counts",
    "relay-mask": "inputs go upstream as the client masked them: no fresh key, re-mask or new frame",
    "gc": "the cycle collector is off",
}


def _skip_uvicorn_hop() -> None:
    start = serving.RelayWebSocketProtocol.start_splice

    def start_splice(self: serving.RelayWebSocketProtocol, on_data: Callable[[bytes], None]) -> serving.SplicedClient:
        client = start(self, on_data)
        self.data_received = on_data  # type: ignore[method-assign]
        self.transport.set_protocol(self)  # uvloop keeps the bound method it finds here
        return client

    serving.RelayWebSocketProtocol.start_splice = start_splice  # type: ignore[method-assign]


def _decode_only(frame: bytes, max_bytes: int, *, text: bool = False) -> object:
    return msgpack.unpackb(frame, raw=False, strict_map_key=True)


def _client_mask_kept() -> None:
    general = ClientToUpstream._handle_frame

    def handle_frame(self: ClientToUpstream, first: int, frame: bytes, size: int, length: int) -> None:
        if first & 0x0F != OP_BINARY or not first & FIN or self._discarding:
            return general(self, first, frame, size, length)
        self.framing.advance(first, length)
        self.hooks.on_input(apply_mask(memoryview(frame)[size:], frame[size - 4 : size]), False)
        self.send_input(frame)

    ClientToUpstream._handle_frame = handle_frame  # type: ignore[method-assign]


def main() -> None:
    unknown = OFF - PARTS.keys()
    if unknown:
        raise SystemExit(f"RELAY_SWITCH_OFF: unknown {sorted(unknown)}; known: {sorted(PARTS)}")
    if "uvicorn-hop" in OFF:
        _skip_uvicorn_hop()
    if "field-checks" in OFF:
        protocol.check_input = _decode_only  # type: ignore[assignment]
    if "input-checks" in OFF:
        protocol.check_input = lambda *args, **kwargs: None  # type: ignore[assignment]
    if "input-hook" in OFF:
        relay.Relay.on_input = lambda self, payload, text=False: None  # type: ignore[method-assign]
    if "output-hook" in OFF:
        relay.Relay.on_upstream_frame = lambda self, length: None  # type: ignore[method-assign]
    if "relay-mask" in OFF:
        _client_mask_kept()
    if "gc" in OFF:
        gc.disable()
    cli.main()


if __name__ == "__main__":
    main()
