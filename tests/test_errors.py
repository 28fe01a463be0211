"""Every bad input and broken upstream gets its own x-fal-error and close code; the relay stays up."""

from __future__ import annotations

import asyncio
import time

import jwt
import msgpack
import pytest
import websockets

from realtime_server import tickets
from realtime_server.protocol import CloseCode

from .conftest import SECRET, RunningRelay, expect_error, next_frame, pack
from .upstreams import FAULT_APPS, fault_upstream, switchable_upstream


async def _refused(url: str, error: str, close_code: int, **connect: object) -> str:
    async with websockets.connect(url, **connect) as ws:
        payload = await expect_error(ws, error, close_code)
    return str(payload["reason"])


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims = {"iss": "t", "sub": "7", "aud": "fal-realtime", "apps": ["local/preview"], "iat": now,
              "exp": now + 60, "jti": "j"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("token", "error", "close_code", "reason"),
    [
        (None, "UNAUTHORIZED", CloseCode.POLICY_VIOLATION,
         "no ticket: pass ?fal_jwt_token=<ticket> or 'Authorization: Key <relay key>'"),
        (jwt.encode(_claims(), "some-other-secret-of-thirty-two-bytes!"), "UNAUTHORIZED", CloseCode.POLICY_VIOLATION,
         "ticket signature does not match this relay's secret"),
        (jwt.encode(_claims(), None, algorithm="none"), "UNAUTHORIZED", CloseCode.POLICY_VIOLATION,
         "ticket must be signed with HS256"),
        (jwt.encode(_claims(iat=int(time.time()) - 700, exp=int(time.time()) - 60), SECRET), "TICKET_EXPIRED",
         CloseCode.TICKET_EXPIRED, "ticket has expired; fetch a new one"),
        (jwt.encode(_claims(aud="someone-else"), SECRET), "UNAUTHORIZED", CloseCode.POLICY_VIOLATION,
         "ticket is not for this service (audience must be 'fal-realtime')"),
        # Made when the tests are collected: far enough ahead to be still in the future when this one runs.
        (jwt.encode(_claims(iat=int(time.time()) + 3000, exp=int(time.time()) + 3060), SECRET), "UNAUTHORIZED",
         CloseCode.POLICY_VIOLATION, "ticket is not valid yet (iat in the future)"),
        (jwt.encode(_claims(exp=int(time.time()) + 3600), SECRET), "UNAUTHORIZED", CloseCode.POLICY_VIOLATION,
         "ticket lives longer than 600 seconds"),
        (jwt.encode(_claims(jti=None), SECRET), "UNAUTHORIZED", CloseCode.POLICY_VIOLATION,
         "ticket lacks the 'jti' claim"),
        ("not.a.jwt", "UNAUTHORIZED", CloseCode.POLICY_VIOLATION, "ticket is malformed (DecodeError)"),
    ],
    ids=["missing", "forged", "alg-none", "expired", "wrong-audience", "not-yet-valid", "too-long", "no-jti",
         "garbage"],
)
async def test_bad_tickets_are_refused(relay: RunningRelay, token, error, close_code, reason) -> None:
    """Each kind of bad ticket is refused with its own code and reason."""
    url = relay.url(ticket=token) if token else relay.url()
    assert await _refused(url, error, close_code) == reason


async def test_unknown_api_key_is_refused(relay: RunningRelay) -> None:
    """A wrong relay key is refused (and fal's key is never a relay key)."""
    reason = await _refused(relay.url(), "UNAUTHORIZED", CloseCode.POLICY_VIOLATION,
                            additional_headers={"Authorization": "Key nope"})
    assert reason == "API key is not known to this relay"


async def test_app_outside_ticket_or_allowlist_is_refused(relay: RunningRelay) -> None:
    """A ticket opens only its own apps, and only apps this relay serves."""
    other = relay.ticket(apps=("fal-ai/fast-lcm-diffusion",))
    reason = await _refused(relay.url(ticket=other), "APP_NOT_ALLOWED", CloseCode.POLICY_VIOLATION)
    assert reason == "your ticket does not allow app local/preview"
    wide = relay.ticket(apps=("local/preview", "evil/app"))
    reason = await _refused(relay.url("evil/app", ticket=wide), "APP_NOT_ALLOWED", CloseCode.POLICY_VIOLATION)
    assert reason == "app evil/app is not served by this relay"


async def test_wrong_origin_is_refused(relay: RunningRelay) -> None:
    """Browsers on origins outside RELAY_ALLOWED_ORIGINS are refused; same-origin pages pass."""
    reason = await _refused(relay.url(ticket=relay.ticket()), "ORIGIN_NOT_ALLOWED", CloseCode.POLICY_VIOLATION,
                            origin="https://evil.example")
    assert reason == "origin https://evil.example may not use this relay; add it to RELAY_ALLOWED_ORIGINS"
    async with websockets.connect(relay.url(ticket=relay.ticket()), origin=relay.http) as ws:
        await ws.send(pack(prompt="same origin", seed=1))
        assert (await next_frame(ws))["seed"] == 1


async def test_allowed_origin_passes(make_relay) -> None:
    """An origin listed in RELAY_ALLOWED_ORIGINS may connect."""
    async with make_relay(allowed_origins=("https://odoo.example",)) as relay:
        async with websockets.connect(relay.url(ticket=relay.ticket()), origin="https://odoo.example") as ws:
            await ws.send(pack(prompt="odoo", seed=2))
            assert (await next_frame(ws))["seed"] == 2


async def test_bad_max_buffering_is_refused(relay: RunningRelay) -> None:
    """max_buffering must be 1-60, as fal requires."""
    reason = await _refused(relay.url(ticket=relay.ticket(), max_buffering=0), "BAD_REQUEST",
                            CloseCode.POLICY_VIOLATION)
    assert reason == "max_buffering must be a whole number from 1 to 60"


@pytest.mark.parametrize(
    ("frame", "close_code", "reason"),
    [
        ("a text frame", CloseCode.INVALID_DATA, "frame is not valid JSON (JSONDecodeError)"),
        ('["a JSON list"]', CloseCode.INVALID_DATA, "frame must be a JSON object of inputs, got list"),
        ('{"prompt": "x", "seed": "abc"}', CloseCode.INVALID_DATA, "field \'seed\' must be an integer, got str"),
        (b'{"prompt": 5}', CloseCode.INVALID_DATA, "field \'prompt\' must be a string, got int"),
        ('{"a": ' + "[" * 20 + "]" * 20 + "}", CloseCode.INVALID_DATA, "frame nests deeper than 16 levels"),
        ('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", CloseCode.INVALID_DATA, "frame nests deeper than 16 levels"),
        (b"\xc1\x00garbage", CloseCode.INVALID_DATA, "frame is not valid msgpack (FormatError)"),
        (b"\x85\xa1a", CloseCode.INVALID_DATA, "frame is not valid msgpack (ValueError)"),
        (msgpack.packb([1, 2, 3]), CloseCode.INVALID_DATA, "frame must be a msgpack map of inputs, got list"),
        (msgpack.packb({"prompt": "x", "seed": "abc"}), CloseCode.INVALID_DATA,
         "field 'seed' must be an integer, got str"),
        (msgpack.packb({"prompt": 5}), CloseCode.INVALID_DATA, "field 'prompt' must be a string, got int"),
        (msgpack.packb({"strength": True}), CloseCode.INVALID_DATA, "field 'strength' must be a number, got bool"),
        (msgpack.packb({"image_bytes": "base64..."}), CloseCode.INVALID_DATA,
         "field 'image_bytes' must be binary (msgpack bin), got str"),
        (msgpack.packb({1: "int key"}), CloseCode.INVALID_DATA, "frame is not valid msgpack (ValueError)"),
        (msgpack.packb({"a": [[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}), CloseCode.INVALID_DATA,
         "frame nests deeper than 16 levels"),
    ],
    ids=["text", "json-list", "json-seed-type", "binary-json-prompt-type", "json-deep", "json-deeper", "malformed",
         "truncated", "not-a-map", "seed-type", "prompt-type", "bool-number", "base64-image", "int-key", "deep"],
)
async def test_bad_frames_are_refused(relay: RunningRelay, frame, close_code, reason) -> None:
    """Malformed or mistyped frames get BAD_FRAME with the exact problem."""
    async with websockets.connect(relay.url(ticket=relay.ticket())) as ws:
        await ws.send(frame)
        payload = await expect_error(ws, "BAD_FRAME", close_code)
    assert payload["reason"] == reason


async def test_oversized_frame_is_refused(make_relay) -> None:
    """A frame over RELAY_MAX_FRAME_BYTES gets FRAME_TOO_LARGE and 1009."""
    async with make_relay(max_frame_bytes=10_000) as relay, websockets.connect(relay.url(ticket=relay.ticket())) as ws:
        await ws.send(pack(prompt="big", image_bytes=b"\0" * 12_000))
        payload = await expect_error(ws, "FRAME_TOO_LARGE", CloseCode.MESSAGE_TOO_BIG)
    assert payload["reason"] == "frame is 12027 bytes; this relay accepts at most 10000"


async def test_input_flood_is_rate_limited(make_relay) -> None:
    """Sending far faster than RELAY_MAX_INPUTS_PER_SECOND gets RATE_LIMITED; other clients carry on."""
    async with make_relay(max_inputs_per_second=20) as relay:
        async with websockets.connect(relay.url(ticket=relay.ticket(sub="calm"))) as calm:
            async with websockets.connect(relay.url(ticket=relay.ticket(sub="flood"))) as flood:
                for seed in range(200):
                    try:
                        await flood.send(pack(prompt="flood", seed=seed))
                    except websockets.ConnectionClosed:
                        break
                payload = await expect_error(flood, "RATE_LIMITED", CloseCode.TRY_AGAIN_LATER)
            assert payload["reason"] == "more than 20 inputs per second; send the newest input only"
            await calm.send(pack(prompt="still here", seed=9))
            assert (await next_frame(calm))["seed"] == 9


async def test_connection_limits(make_relay) -> None:
    """Per-user and total connection limits answer TOO_MANY_CONNECTIONS; closing one frees a slot."""
    async with make_relay(max_connections_per_user=2, max_connections=3) as relay:
        first = await websockets.connect(relay.url(ticket=relay.ticket(sub="u1")))
        second = await websockets.connect(relay.url(ticket=relay.ticket(sub="u1")))
        reason = await _refused(relay.url(ticket=relay.ticket(sub="u1")), "TOO_MANY_CONNECTIONS",
                                CloseCode.TRY_AGAIN_LATER)
        assert reason == "you already have 2 open connections; close one first"
        third = await websockets.connect(relay.url(ticket=relay.ticket(sub="u2")))
        reason = await _refused(relay.url(ticket=relay.ticket(sub="u3")), "TOO_MANY_CONNECTIONS",
                                CloseCode.TRY_AGAIN_LATER)
        assert reason == "relay is at its limit of 3 connections; retry shortly"
        await first.close()
        await asyncio.sleep(0.1)
        async with websockets.connect(relay.url(ticket=relay.ticket(sub="u1"))) as again:
            await again.send(pack(prompt="slot", seed=4))
            assert (await next_frame(again))["seed"] == 4
        await second.close()
        await third.close()


async def test_idle_client_is_closed(make_relay) -> None:
    """A client that sends nothing for RELAY_IDLE_TIMEOUT is told TIMEOUT and closed with 4003."""
    async with make_relay(idle_timeout=0.5) as relay, websockets.connect(relay.url(ticket=relay.ticket())) as ws:
        payload = await expect_error(ws, "TIMEOUT", CloseCode.IDLE_TIMEOUT)
    assert payload["reason"] == "no input for 0.5 s; reconnect when needed"


async def test_session_length_is_capped(make_relay) -> None:
    """A connection older than RELAY_MAX_SESSION_SECONDS ends with SESSION_EXPIRED and 4002."""
    async with make_relay(max_session_seconds=0.8) as relay, websockets.connect(relay.url(ticket=relay.ticket())) as ws:
        await ws.send(pack(prompt="short", seed=1))
        await next_frame(ws)
        payload = await expect_error(ws, "SESSION_EXPIRED", CloseCode.SESSION_EXPIRED)
    assert payload["reason"] == "sessions last at most 0.8 s; reconnect to go on"


@pytest.fixture
async def faulty(make_relay):
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS,
                                                   upstream_open_timeout=0.5) as relay:
        yield relay


def _fault_ticket(relay: RunningRelay) -> str:
    return relay.ticket(apps=FAULT_APPS)


async def test_upstream_refusal(faulty: RunningRelay) -> None:
    """An upstream that refuses the handshake gives UPSTREAM_UNAVAILABLE and 1013."""
    reason = await _refused(faulty.url("fault/refuse", ticket=_fault_ticket(faulty)), "UPSTREAM_UNAVAILABLE",
                            CloseCode.TRY_AGAIN_LATER)
    assert reason == "upstream refused fault/refuse with HTTP 403"


async def test_upstream_slow_to_accept(faulty: RunningRelay) -> None:
    """An upstream that does not finish its handshake in time gives UPSTREAM_UNAVAILABLE."""
    reason = await _refused(faulty.url("fault/slow", ticket=_fault_ticket(faulty)), "UPSTREAM_UNAVAILABLE",
                            CloseCode.TRY_AGAIN_LATER)
    assert reason == "upstream did not answer within 0.5 s"


async def test_upstream_dies_mid_stream(faulty: RunningRelay) -> None:
    """An upstream that drops the connection gives UPSTREAM_ERROR and 1014; the relay serves on."""
    async with websockets.connect(faulty.url("fault/crash", ticket=_fault_ticket(faulty))) as ws:
        await ws.send(pack(prompt="boom"))
        payload = await expect_error(ws, "UPSTREAM_ERROR", CloseCode.BAD_GATEWAY)
    assert payload["reason"] == "upstream closed the connection unexpectedly (code 1006)"
    async with websockets.connect(faulty.url("fault/echo", ticket=_fault_ticket(faulty))) as ws:
        await ws.send(pack(seq=1))
        assert (await next_frame(ws))["echo"] == 1


async def test_upstream_garbage(faulty: RunningRelay) -> None:
    """Binary upstream frames that are not msgpack maps give UPSTREAM_ERROR."""
    async with websockets.connect(faulty.url("fault/garbage", ticket=_fault_ticket(faulty))) as ws:
        await ws.send(pack(prompt="x"))
        payload = await expect_error(ws, "UPSTREAM_ERROR", CloseCode.BAD_GATEWAY)
    assert payload["reason"] == "upstream sent a binary frame that is not a msgpack map"


async def test_upstream_error_is_passed_through(faulty: RunningRelay) -> None:
    """The upstream's own x-fal-error reaches the client unchanged, then a 1011 close."""
    async with websockets.connect(faulty.url("fault/error", ticket=_fault_ticket(faulty))) as ws:
        await ws.send(pack(prompt="x"))
        payload = await expect_error(ws, "INTERNAL_ERROR", CloseCode.INTERNAL_ERROR)
    assert payload["reason"] == "model exploded"


async def test_client_that_never_reads_skips_frames(faulty: RunningRelay) -> None:
    """A client that stops reading gets the latest frames only: the relay drops, it does not queue."""
    async with websockets.connect(faulty.url("fault/echo", ticket=_fault_ticket(faulty)), max_queue=1,
                                  close_timeout=0.5) as stalled:
        await stalled.send(pack(seq=1, size=256 * 1024, count=80))
        async with asyncio.timeout(10):
            while faulty.metric("relay_frames_dropped_total", direction="out") < 20:
                await asyncio.sleep(0.05)
        async with websockets.connect(faulty.url("fault/echo", ticket=_fault_ticket(faulty))) as healthy:
            await healthy.send(pack(seq=99))
            assert (await next_frame(healthy))["echo"] == 99
    assert faulty.metric("relay_frames_total", direction="out") < faulty.metric(
        "relay_frames_total", direction="upstream")


def test_tickets_refuse_claims_the_relay_cannot_honour() -> None:
    """mint() refuses lifetimes over ten minutes and roles without a session."""
    with pytest.raises(ValueError, match="lifetime must be between 1 and 600 seconds"):
        tickets.mint(SECRET, sub="1", apps=["a/b"], issuer="t", lifetime=601)
    with pytest.raises(ValueError, match="a role needs a session"):
        tickets.mint(SECRET, sub="1", apps=["a/b"], issuer="t", role="viewer")


@pytest.mark.parametrize("sub_path", ["x%3Fkey=1", "x%23frag", "x%20y", "x%0DHost:%20evil", "x%09y", "x%00"],
                         ids=["query", "fragment", "space", "cr", "tab", "nul"])
async def test_a_sub_path_that_would_bend_the_upstream_request_line_is_refused(relay: RunningRelay, sub_path) -> None:
    """A percent-decoded sub-path may not carry '?', '#', white space or a control character upstream."""
    url = f"{relay.base}/local/preview/{sub_path}/realtime?fal_jwt_token={relay.ticket()}"
    reason = await _refused(url, "BAD_REQUEST", CloseCode.POLICY_VIOLATION)
    assert reason == "the path may not hold '?', '#', white space or control characters"


async def test_a_sub_path_with_a_line_feed_matches_no_route(relay: RunningRelay) -> None:
    """A decoded LF never matches a route (Starlette's path pattern stops at it): refused at the handshake."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        path = "/local/preview/x%0D%0AHost:%20evil/realtime"
        await websockets.connect(f"{relay.base}{path}?fal_jwt_token={relay.ticket()}")
    assert refused.value.response.status_code == 403


async def test_an_upstream_open_cut_by_the_lifetime_leaves_no_socket(make_relay) -> None:
    """The connection's lifetime ends while upstream holds its handshake: the client gets SESSION_EXPIRED and
    the half-open upstream socket is closed, so upstream never gets a connection to serve."""
    async with switchable_upstream() as switch, make_relay(upstream_url=switch.url, allowed_apps=("fault/switch",),
                                                           max_session_seconds=0.3) as relay:
        switch.mode, switch.slow_seconds = "slow", 1.0
        async with websockets.connect(relay.url("fault/switch", ticket=relay.ticket(apps=("fault/switch",)))) as ws:
            await ws.send(pack(seq=1))
            await expect_error(ws, "SESSION_EXPIRED", CloseCode.SESSION_EXPIRED)
        await asyncio.sleep(1.5)  # past the upstream's handshake delay
        assert switch.handshakes == 1 and switch.open_connections == 0
