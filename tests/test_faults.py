"""Upstream faults: the client is told within 100 ms with the right code, reconnecting works, nothing leaks.

A switchable upstream (`tests/upstreams.py`) refuses, stalls, crashes, drops, talks garbage or
reports its own error on demand, and records when it did, so each test times the relay from the
fault to the client's x-fal-error. An upstream idle TIMEOUT is the one fault the client never sees.
"""

from __future__ import annotations

import asyncio
import json
import time

import msgpack
import pytest
import websockets

from .conftest import RunningRelay, pack
from .reliability import live_tasks, open_fds, settle, wait_for
from .upstreams import Switchable, switchable_upstream

OPEN_TIMEOUT = 0.5
TOLD_WITHIN = 0.100  # the deadline, from the fault to the client holding the x-fal-error

# mode -> (error, close code, reason) the client must get
FAULTS = {
    "refuse": ("UPSTREAM_UNAVAILABLE", 1013, "upstream refused fault/switch with HTTP 403"),
    "slow": ("UPSTREAM_UNAVAILABLE", 1013, f"upstream did not answer within {OPEN_TIMEOUT:g} s"),
    "crash": ("UPSTREAM_ERROR", 1014, "upstream closed the connection unexpectedly (code 1006)"),
    "drop": ("UPSTREAM_ERROR", 1014, "upstream closed the connection unexpectedly (code 1006)"),
    "garbage": ("UPSTREAM_ERROR", 1014, "upstream sent a binary frame that is not a msgpack map"),
    "error": ("MODEL_FAILED", 1011, "model exploded"),
}


@pytest.fixture
async def switched(make_relay):
    async with switchable_upstream() as switch, make_relay(
        upstream_url=switch.url, allowed_apps=("fault/switch",), upstream_open_timeout=OPEN_TIMEOUT,
        max_connections_per_user=32,
    ) as relay:
        yield relay, switch


def _url(relay: RunningRelay, sub: str = "7") -> str:
    return relay.url("fault/switch", ticket=relay.ticket(sub=sub, apps=("fault/switch",)))


async def _fault_round(relay: RunningRelay, switch: Switchable, mode: str) -> tuple[dict, int, float]:
    """Open a client while the upstream is in `mode`; return the x-fal-error, the close code, and the delay."""
    switch.mode, switch.fault_at = mode, None
    async with websockets.connect(_url(relay), open_timeout=30) as ws:
        if mode not in ("refuse", "slow"):
            await ws.send(pack(seq=1))
        async with asyncio.timeout(10):
            while True:
                frame = await ws.recv()
                if isinstance(frame, str):
                    told = time.perf_counter()
                    break
                assert mode == "drop" and msgpack.unpackb(frame)["ack"] == 1, frame
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
    assert switch.fault_at is not None, "the upstream never produced its fault"
    fault_at = switch.fault_at + (OPEN_TIMEOUT if mode == "slow" else 0.0)
    return json.loads(frame), closed.value.rcvd.code, told - fault_at


async def _reconnect(relay: RunningRelay, switch: Switchable, seq: int) -> None:
    switch.mode = "ok"
    async with websockets.connect(_url(relay), open_timeout=30) as ws:
        await ws.send(pack(seq=seq))
        async with asyncio.timeout(10):
            answer = msgpack.unpackb(await ws.recv(), raw=False)
    assert msgpack.unpackb(answer["input"], raw=False) == {"seq": seq}


@pytest.mark.parametrize("mode", list(FAULTS))
async def test_client_is_told_within_100ms_and_can_reconnect(switched, mode: str) -> None:
    """Each upstream fault reaches the client as its x-fal-error and close within 100 ms; a reconnect then works."""
    relay, switch = switched
    error, code, reason = FAULTS[mode]
    for round_ in range(3):
        payload, close_code, delay = await _fault_round(relay, switch, mode)
        assert (payload["error"], payload["reason"], close_code) == (error, reason, code)
        assert delay < TOLD_WITHIN, f"round {round_}: told {delay * 1000:.0f} ms after the fault"
        await _reconnect(relay, switch, seq=round_)


async def test_faults_leak_no_tasks_sockets_or_fds(switched) -> None:
    """Thirty-six faulty connections and their reconnects leave the task, fd and connection counts where they were."""
    relay, switch = switched
    for mode in FAULTS:  # warm-up: lazily created fds and tasks (resolver, thread pool) count in the baseline
        await _fault_round(relay, switch, mode)
    await _reconnect(relay, switch, seq=0)
    await asyncio.sleep(switch.slow_seconds)  # the stalled upstream handshake of the warm-up ends
    fds, tasks = await settle(open_fds, 0, limit=1), await settle(live_tasks, 0, limit=1)
    for round_ in range(6):
        for mode in FAULTS:
            await _fault_round(relay, switch, mode)
        await _reconnect(relay, switch, seq=round_)
    await asyncio.sleep(switch.slow_seconds)
    after_fds = await settle(open_fds, fds, limit=15)
    after_tasks = await settle(live_tasks, tasks, limit=15)
    assert after_fds <= fds, f"fds {fds} -> {after_fds}"
    assert after_tasks <= tasks, f"tasks {tasks} -> {after_tasks}"
    await wait_for(lambda: switch.open_connections == 0, what="upstream connections closed")
    assert relay.app.state.limits.total == 0 and relay.app.state.limits.per_user == {}
    assert relay.metric("relay_open_connections", role="driver") == 0


async def test_upstream_idle_timeout_keeps_the_client_and_reopens(switched) -> None:
    """An upstream that ends every session with TIMEOUT is invisible: each next input reopens it and is answered."""
    relay, switch = switched
    switch.mode = "timeout"
    async with websockets.connect(_url(relay)) as ws:
        for seq in range(1, 6):
            await ws.send(pack(seq=seq))
            async with asyncio.timeout(10):
                frame = await ws.recv()
            assert isinstance(frame, bytes), f"client saw {frame!r}"
            assert msgpack.unpackb(msgpack.unpackb(frame, raw=False)["input"], raw=False) == {"seq": seq}
            await wait_for(lambda: switch.open_connections == 0, what="upstream session ended")
        assert ws.state is websockets.State.OPEN
    assert switch.handshakes == 5
    assert relay.metric("relay_upstream_opens_total") == 5
    assert relay.metric("relay_errors_total", code="TIMEOUT") == 0


async def test_an_input_lost_to_the_idle_timeout_is_sent_again_once(switched) -> None:
    """An input upstream never answers before its TIMEOUT goes again on the next leg, once: a second TIMEOUT
    leaves the client waiting (no loop of reopened legs), and the next input gets its own one re-send."""
    relay, switch = switched
    switch.mode = "mute-timeout"
    async with websockets.connect(_url(relay)) as ws:
        for sent, legs in ((1, 2), (2, 4)):
            await ws.send(pack(seq=sent))
            await wait_for(lambda: switch.handshakes == legs and switch.open_connections == 0,
                           what=f"{legs} upstream legs opened and ended")
            await asyncio.sleep(0.5)  # time for a third leg, if the input were sent again once more
            assert switch.handshakes == legs
        assert ws.state is websockets.State.OPEN
    assert relay.metric("relay_upstream_opens_total") == 4
    assert relay.metric("relay_errors_total", code="TIMEOUT") == 0


async def test_input_racing_the_idle_timeout_is_answered(switched) -> None:
    """An input that reaches upstream just before it idles out is re-sent on the reopened upstream and answered."""
    relay, switch = switched
    switch.mode, switch.drop_after = "late-timeout", 0.3
    async with websockets.connect(_url(relay)) as ws:
        await ws.send(pack(seq=1))
        async with asyncio.timeout(10):
            assert msgpack.unpackb(await ws.recv(), raw=False)["ack"] == 1
        switch.mode = "ok"
        await ws.send(pack(seq=2))  # lands on the upstream that is about to send TIMEOUT
        async with asyncio.timeout(3):
            answer = msgpack.unpackb(await ws.recv(), raw=False)
    assert msgpack.unpackb(answer["input"], raw=False) == {"seq": 2}
    assert switch.handshakes == 2
