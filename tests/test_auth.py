"""Auth and isolation at scale: no bad credential gets in, none reaches a log, no user sees another's frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import httpx
import jwt
import msgpack
import pytest
import websockets

from realtime_server import tickets

from .conftest import SECRET, RunningRelay, pack
from .reliability import wait_for
from .upstreams import FAULT_APPS, fault_upstream

OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs256"
CLIENT_LOGGER = logging.getLogger("tests.client")  # the test's own clients log under this name, not the relay's


def _relay_logs(caplog) -> str:
    """Everything the relay process logged (uvicorn, websockets, the relay), without the test clients' lines."""
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
                     if not r.name.startswith("tests."))


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": "t", "sub": "mallory", "aud": "fal-realtime", "apps": ["local/preview"], "iat": now,
              "exp": now + 60, "jti": f"j{time.perf_counter_ns()}"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _attempts(relay: RunningRelay, n: int) -> list[tuple[str, str, dict[str, Any], str]]:
    """(kind, url, connect options, secret to look for in logs) for `n` fresh credentials of every bad kind."""
    now = int(time.time())
    out = []
    for i in range(n):
        good = relay.ticket(sub=f"u{i}")
        forged = good.rsplit(".", 1)[0] + "." + jwt.encode(_claims(), OTHER_SECRET).rsplit(".", 1)[1]
        kinds = {
            "forged-signature": forged,
            "alg-none": jwt.encode(_claims(), None, algorithm="none"),
            "wrong-key": jwt.encode(_claims(), OTHER_SECRET),
            "hs512": jwt.encode(_claims(), SECRET + SECRET, algorithm="HS512"),
            "expired": jwt.encode(_claims(iat=now - 700, exp=now - 60), SECRET),
            "not-yet-valid": jwt.encode(_claims(iat=now + 120, exp=now + 180), SECRET),
            "wrong-audience": jwt.encode(_claims(aud="odoo"), SECRET),
            "app-not-in-ticket": relay.ticket(sub=f"u{i}", apps=("fal-ai/fast-lcm-diffusion",)),
        }
        for kind, token in kinds.items():
            out.append((kind, relay.url(ticket=token), {}, token))
        wide = relay.ticket(sub=f"u{i}", apps=("local/preview", "evil/app"))
        out.append(("app-not-in-allowlist", relay.url("evil/app", ticket=wide), {}, wide))
        out.append(("wrong-origin", relay.url(ticket=good), {"origin": f"https://evil{i}.example"}, good))
        key = f"relay-key-guess-{i}"
        out.append(("unknown-key", relay.url(), {"additional_headers": {"Authorization": f"Key {key}"}}, key))
        out.append(("ticket-as-key", relay.url(), {"additional_headers": {"Authorization": f"Key {good}"}}, good))
    return out


async def test_no_bad_credential_is_accepted_or_leaked(relay: RunningRelay, caplog) -> None:
    """20 fresh credentials of each of 12 bad kinds, concurrently: 0 accepted, and none in logs, errors or metrics."""
    caplog.set_level(logging.INFO)  # the relay's default level; debug is test_debug_logs_hold_no_credentials's
    attempts = _attempts(relay, 20)
    accepted_before = relay.metric("relay_connections_total", outcome="accepted")
    answers: list[tuple[str, dict[str, Any], int | None]] = []
    gate = asyncio.Semaphore(16)

    async def attempt(kind: str, url: str, options: dict[str, Any]) -> None:
        async with gate, websockets.connect(url, open_timeout=30, logger=CLIENT_LOGGER, **options) as ws:
            with contextlib.suppress(websockets.ConnectionClosed):  # the relay may have closed already
                await ws.send(pack(prompt="let me in", seed=1))
            async with asyncio.timeout(15):
                frame = await ws.recv()
                assert isinstance(frame, str), f"{kind}: a frame came back"
                try:
                    await ws.recv()
                except websockets.ConnectionClosed as closed:
                    answers.append((kind, json.loads(frame), closed.rcvd.code if closed.rcvd else None))

    async with asyncio.timeout(120):
        await asyncio.gather(*(attempt(kind, url, options) for kind, url, options, _ in attempts))
    assert len(answers) == len(attempts)
    assert relay.metric("relay_connections_total", outcome="accepted") == accepted_before
    expected = {"expired": ("TICKET_EXPIRED", 4001), "app-not-in-ticket": ("APP_NOT_ALLOWED", 1008),
                "app-not-in-allowlist": ("APP_NOT_ALLOWED", 1008), "wrong-origin": ("ORIGIN_NOT_ALLOWED", 1008)}
    for kind, payload, code in answers:
        assert (payload["error"], code) == expected.get(kind, ("UNAUTHORIZED", 1008)), (kind, payload, code)
    async with httpx.AsyncClient(base_url=relay.http) as http:
        metrics = (await http.get("/metrics")).text
    logs = _relay_logs(caplog)
    reasons = "\n".join(payload["reason"] for _, payload, _ in answers)
    assert '"WebSocket /local/preview/realtime?' in logs  # uvicorn's lines (with their query) were captured
    for kind, _, _, secret in attempts:
        for part in {secret, *secret.split(".")} - {""}:
            if len(part) >= 16:  # JWT headers repeat across tickets; every signature and payload is unique
                for where, text in (("logs", logs), ("x-fal-error reasons", reasons), ("metrics", metrics)):
                    assert part not in text, f"{kind}: credential found in {where}"


async def test_percent_encoded_ticket_parameter_never_reaches_the_logs(relay: RunningRelay, caplog) -> None:
    """A ticket passed as `fal%5Fjwt%5Ftoken=` (which the relay accepts) is redacted from uvicorn's log line too."""
    caplog.set_level(logging.INFO)
    ticket = relay.ticket()
    async with websockets.connect(f"{relay.base}/local/preview/realtime?fal%5Fjwt%5Ftoken={ticket}",
                                  logger=CLIENT_LOGGER) as ws:
        await ws.send(pack(prompt="encoded", seed=3))
        async with asyncio.timeout(15):
            assert msgpack.unpackb(await ws.recv(), raw=False)["seed"] == 3
    assert ticket.split(".")[2] not in _relay_logs(caplog)


async def test_debug_logs_hold_no_credentials(make_relay, caplog) -> None:
    """Even at debug level the relay logs no relay key, no ticket and not fal's key."""
    caplog.set_level(logging.DEBUG)
    fal_key = "fal-key-id:fal-key-secret-0123456789abcdef"
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS, fal_key=fal_key) as relay:
        ticket = relay.ticket(apps=("fault/ack",))
        for options in ({"uri": relay.url("fault/ack", ticket=ticket)},
                        {"uri": relay.url("fault/ack"), "additional_headers": {"Authorization": "Key relay-key-1"}}):
            async with websockets.connect(**options, logger=CLIENT_LOGGER) as ws:
                await ws.send(pack(seq=1))
                async with asyncio.timeout(15):
                    assert msgpack.unpackb(await ws.recv(), raw=False)["ack"] == 1
    logs = _relay_logs(caplog)
    assert "[redacted]" in logs
    leaked = [name for name, secret in (("ticket", ticket.split(".")[2]), ("relay key", "relay-key-1"),
                                        ("fal key", "fal-key-secret")) if secret in logs]
    assert leaked == [], [line for line in logs.splitlines() if "[redacted]" not in line and "Key" in line][:3]


async def test_replayed_ticket_is_refused_after_expiry(make_relay) -> None:
    """A ticket works (and may be reused) until exp + leeway; every replay after that gets TICKET_EXPIRED."""
    async with make_relay(ticket_leeway=0.2) as relay:
        issued = time.time()
        ticket = tickets.mint(SECRET, sub="7", apps=["local/preview"], issuer="tests", lifetime=1, now=issued)
        expires = int(issued) + 1
        for seed in (1, 2):
            async with websockets.connect(relay.url(ticket=ticket)) as ws:
                await ws.send(pack(prompt="before expiry", seed=seed))
                async with asyncio.timeout(15):
                    assert msgpack.unpackb(await ws.recv(), raw=False)["seed"] == seed
        await asyncio.sleep(max(0.0, expires + 0.2 - time.time()) + 0.1)
        for _ in range(20):
            async with websockets.connect(relay.url(ticket=ticket)) as ws, asyncio.timeout(15):
                payload = json.loads(await ws.recv())
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
            assert payload == {"type": "x-fal-error", "error": "TICKET_EXPIRED",
                               "reason": "ticket has expired; fetch a new one"}
            assert closed.value.rcvd.code == 4001


async def _user(relay: RunningRelay, app: str, index: int, rounds: int, check) -> int:
    ticket = relay.ticket(sub=f"user-{index}", apps=(app,))
    got = 0
    async with websockets.connect(relay.url(app, ticket=ticket), open_timeout=30) as ws:
        for step in range(rounds):
            inputs = {"prompt": f"user {index} step {step}", "seed": 10_000 + index, "width": 64, "height": 64}
            await ws.send(msgpack.packb(inputs))
            async with asyncio.timeout(30):
                frame = await ws.recv()
            assert isinstance(frame, bytes), frame
            check(index, inputs, msgpack.unpackb(frame, raw=False))
            got += 1
    return got


async def test_many_users_on_the_real_app_get_only_their_own_frames(make_relay) -> None:
    """30 concurrent users with distinct seeds on local/preview: every frame each one gets carries its own seed."""

    def check(index: int, inputs: dict[str, Any], answer: dict[str, Any]) -> None:
        assert answer["seed"] == inputs["seed"], f"user {index} got seed {answer['seed']}"

    async with make_relay() as relay, asyncio.timeout(120):
        counts = await asyncio.gather(*(_user(relay, "local/preview", i, 4, check) for i in range(30)))
    assert counts == [4] * 30


async def test_hundred_users_get_exactly_their_own_inputs_answered(make_relay) -> None:
    """100 concurrent users x 20 inputs through an echoing upstream: each answer holds that user's exact input."""

    def check(index: int, inputs: dict[str, Any], answer: dict[str, Any]) -> None:
        assert msgpack.unpackb(answer["input"], raw=False) == inputs, f"user {index} got {answer['input']!r}"

    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS) as relay, \
            asyncio.timeout(120):
        counts = await asyncio.gather(*(_user(relay, "fault/ack", i, 20, check) for i in range(100)))
        assert counts == [20] * 100
        assert relay.metric("relay_frames_total", direction="out") == 2000


async def test_same_session_id_from_two_issuers_stays_apart(relay: RunningRelay) -> None:
    """Two backends minting the same session id get two sessions: each viewer sees only its own driver's frames."""

    def ticket(issuer: str, role: str) -> str:
        return tickets.mint(SECRET, sub=f"{issuer}-{role}", apps=["local/preview"], issuer=issuer,
                            session="thread-1", role=role)

    async with websockets.connect(relay.url(ticket=ticket("odoo-a", "viewer"))) as viewer_a, \
            websockets.connect(relay.url(ticket=ticket("odoo-b", "viewer"))) as viewer_b:
        for viewer in (viewer_a, viewer_b):
            async with asyncio.timeout(10):
                assert json.loads(await viewer.recv())["action"] == "session_waiting"
        driver_a = await websockets.connect(relay.url(ticket=ticket("odoo-a", "driver")))
        driver_b = await websockets.connect(relay.url(ticket=ticket("odoo-b", "driver")))
        for viewer, driver in ((viewer_a, "odoo-a-driver"), (viewer_b, "odoo-b-driver")):
            async with asyncio.timeout(10):
                assert json.loads(await viewer.recv()) == {"type": "x-fal-message", "action": "session_live",
                                                           "driver": driver}
        for round_ in range(3):
            await driver_a.send(pack(prompt="a", seed=100 + round_, width=64, height=64))
            await driver_b.send(pack(prompt="b", seed=200 + round_, width=64, height=64))
            async with asyncio.timeout(15):
                for ws, seed in ((driver_a, 100), (viewer_a, 100), (driver_b, 200), (viewer_b, 200)):
                    assert msgpack.unpackb(await ws.recv(), raw=False)["seed"] == seed + round_
        await driver_a.close()
        await driver_b.close()
    await wait_for(lambda: relay.app.state.sessions.sessions == {}, what="both sessions ended")
