"""Running for real: secrets rotated by `kid`, several issuers (tenants) on one relay, connections that end
with their tickets. Real relays (uvicorn) on the embedded fal app, real `websockets` clients."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack
from typing import Any

import jwt
import pytest
import websockets

from realtime_server import Settings, tickets
from realtime_server.issuers import Issuer
from realtime_server.protocol import CloseCode

from .conftest import SECRET, RunningRelay, expect_error, next_frame, pack

OLD = "old-secret-0123456789-0123456789-0123456789"
NEW = "new-secret-9876543210-9876543210-9876543210"
ODOO_A, ODOO_B = "https://odoo-a.example", "https://odoo-b.example"
SECRET_A = "tenant-a-secret-0123456789-0123456789-012"
SECRET_B = "tenant-b-secret-0123456789-0123456789-012"


def mint(secret: str, issuer: str = "https://odoo.example", kid: str | None = None, **claims: Any) -> str:
    claims.setdefault("sub", "7")
    claims.setdefault("apps", ["local/preview"])
    return tickets.mint(secret, issuer=issuer, kid=kid, **claims)


async def streams(relay: RunningRelay, ticket: str, seed: int = 1) -> None:
    """The ticket opens the app and a frame answers an input."""
    async with websockets.connect(relay.url(ticket=ticket)) as ws:
        await ws.send(pack(prompt="rotation", seed=seed, width=64, height=64))
        assert (await next_frame(ws, timeout=15))["seed"] == seed


async def refused(relay: RunningRelay, ticket: str, error: str = "UNAUTHORIZED", app: str = "local/preview",
                  **query: Any) -> str:
    """The handshake is refused with `error`; the reason is returned."""
    async with websockets.connect(relay.url(app, ticket=ticket, **query)) as ws:
        close = CloseCode.POLICY_VIOLATION if error != "TOO_MANY_CONNECTIONS" else CloseCode.TRY_AGAIN_LATER
        payload = await expect_error(ws, error, close)
    reason: str = payload["reason"]
    return reason


async def test_rotation_overlap_then_old_secret_refused(make_relay) -> None:
    """During the overlap tickets under the old (kid-less) and the new secret (kid) both stream; a ticket
    is checked only against the secret its kid names; after the overlap the old one is refused."""
    async with make_relay(shared_secret=OLD, shared_secrets=(("2026-12", NEW),)) as relay:
        await streams(relay, mint(OLD), seed=1)
        await streams(relay, mint(NEW, kid="2026-12"), seed=2)
        assert await refused(relay, mint(NEW)) == "ticket signature does not match this relay's secret"
        assert await refused(relay, mint(OLD, kid="2026-12")) == "ticket signature does not match this relay's secret"
        assert await refused(relay, mint(NEW, kid="2027-01")) == (
            "ticket's key id (kid) is not one this relay knows for its issuer")
    async with make_relay(shared_secret=None, shared_secrets=(("2026-12", NEW),)) as relay:
        assert not relay.settings.dev_mode
        await streams(relay, mint(NEW, kid="2026-12"), seed=3)
        assert await refused(relay, mint(OLD)) == (
            "ticket has no key id (kid), and its issuer's secrets all have one")


async def test_rotation_from_kid_to_kid(make_relay) -> None:
    """Rotating again: two kids during the overlap, then only the newer."""
    async with make_relay(shared_secret=None, shared_secrets=(("2026-06", OLD), ("2026-12", NEW))) as relay:
        await streams(relay, mint(OLD, kid="2026-06"), seed=4)
        await streams(relay, mint(NEW, kid="2026-12"), seed=5)
    async with make_relay(shared_secret=None, shared_secrets=(("2026-12", NEW),)) as relay:
        assert await refused(relay, mint(OLD, kid="2026-06")) == (
            "ticket's key id (kid) is not one this relay knows for its issuer")
        await streams(relay, mint(NEW, kid="2026-12"), seed=6)


def _tenants(**a: Any) -> tuple[Issuer, ...]:
    return (
        Issuer(name=ODOO_A, secrets=(("a1", SECRET_A),), **a),
        Issuer(name=ODOO_B, secrets=((None, SECRET_B),)),
    )


async def test_one_tenants_secret_opens_nothing_of_another(make_relay) -> None:
    """A ticket naming tenant B's issuer but signed with A's secret is refused; so is an unlisted issuer when
    the relay has no relay-wide secret; each tenant's own tickets stream."""
    async with make_relay(shared_secret=None, issuers=_tenants()) as relay:
        await streams(relay, mint(SECRET_A, ODOO_A, kid="a1"), seed=7)
        await streams(relay, mint(SECRET_B, ODOO_B), seed=8)
        assert await refused(relay, mint(SECRET_A, ODOO_B, kid="a1")) == (
            "ticket's key id (kid) is not one this relay knows for its issuer")
        assert await refused(relay, mint(SECRET_A, ODOO_B)) == "ticket signature does not match this relay's secret"
        assert await refused(relay, mint(SECRET_A, "https://odoo-c.example", kid="a1")) == (
            "ticket's issuer is not known to this relay")
        # No relay-wide secret here: the usual test secret opens nothing.
        assert await refused(relay, mint(SECRET)) == "ticket's issuer is not known to this relay"


async def test_tenants_sharing_a_session_id_and_a_user_id_stay_apart(make_relay) -> None:
    """Both tenants have user 7 driving session "thread-1": two sessions, each viewer sees only its tenant's
    frames, a viewer ticket of B never joins A's session, and A's per-user limit does not count B's user 7."""
    async with make_relay(shared_secret=None, issuers=_tenants(max_connections_per_user=2)) as relay, \
            AsyncExitStack() as stack:

        async def connect(secret: str, issuer: str, kid: str | None, role: str, sub: str = "7") -> Any:
            ticket = mint(secret, issuer, kid=kid, sub=sub, session="thread-1", role=role)
            return await stack.enter_async_context(websockets.connect(relay.url(ticket=ticket, session="thread-1")))

        driver_a = await connect(SECRET_A, ODOO_A, "a1", "driver")
        await driver_a.send(pack(prompt="a", seed=100, width=64, height=64))
        assert (await next_frame(driver_a, timeout=15))["seed"] == 100
        viewer_b = await connect(SECRET_B, ODOO_B, None, "viewer")
        async with asyncio.timeout(10):  # B's session has no driver yet: A's frames are not B's
            assert json.loads(await viewer_b.recv())["action"] == "session_waiting"
        driver_b = await connect(SECRET_B, ODOO_B, None, "driver")
        async with asyncio.timeout(10):
            assert json.loads(await viewer_b.recv()) == {"type": "x-fal-message", "action": "session_live",
                                                         "driver": "7"}
        viewer_a = await connect(SECRET_A, ODOO_A, "a1", "viewer")  # A's user 7, second connection: at A's limit
        assert (await next_frame(viewer_a))["seed"] == 100  # joined late: A's latest frame at once
        for round_ in range(3):
            await driver_a.send(pack(prompt="a", seed=101 + round_, width=64, height=64))
            await driver_b.send(pack(prompt="b", seed=201 + round_, width=64, height=64))
            for ws, seed in ((driver_a, 101), (viewer_a, 101), (driver_b, 201), (viewer_b, 201)):
                assert (await next_frame(ws, timeout=15))["seed"] == seed + round_
        third_a = mint(SECRET_A, ODOO_A, kid="a1", sub="7", session="thread-1", role="viewer")
        assert await refused(relay, third_a, "TOO_MANY_CONNECTIONS", session="thread-1") == (
            "you already have 2 open connections; close one first")
        await connect(SECRET_B, ODOO_B, None, "viewer")  # B's user 7 has its own count (the relay-wide 8)
        assert len(relay.app.state.sessions.sessions) == 2


async def test_tenant_apps_and_connection_limit(make_relay) -> None:
    """A tenant's `apps` bound what its tickets open, and its `max_connections` bounds all its users together,
    while the other tenant is unaffected."""
    tenants = _tenants(apps=("fal-ai/fast-lcm-diffusion",), max_connections=2)
    a_apps = (Issuer(name=ODOO_A, secrets=(("a1", SECRET_A),), max_connections=2), tenants[1])
    async with make_relay(shared_secret=None, issuers=tenants) as relay:
        assert await refused(relay, mint(SECRET_A, ODOO_A, kid="a1"), "APP_NOT_ALLOWED") == (
            "app local/preview is not allowed for your ticket's issuer")
        await streams(relay, mint(SECRET_B, ODOO_B), seed=9)
    async with make_relay(shared_secret=None, issuers=a_apps) as relay, AsyncExitStack() as stack:
        for sub in ("1", "2"):
            await stack.enter_async_context(websockets.connect(relay.url(ticket=mint(SECRET_A, ODOO_A, "a1", sub=sub))))
        await asyncio.sleep(0.2)  # both admitted
        assert await refused(relay, mint(SECRET_A, ODOO_A, "a1", sub="3"), "TOO_MANY_CONNECTIONS") == (
            "your organisation has its limit of 2 open connections; retry shortly")
        await streams(relay, mint(SECRET_B, ODOO_B, sub="3"), seed=10)


def test_issuers_from_a_file_and_bad_values(tmp_path) -> None:
    """RELAY_ISSUERS reads inline JSON or @file; a bad value names the variable and never echoes a secret."""
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({ODOO_A: {"secret": SECRET_A, "secrets": {"a1": SECRET_B},
                                         "apps": ["local/preview"], "max_connections_per_user": 3}}))
    (issuer,) = Settings.from_environ({"RELAY_ISSUERS": f"@{path}"}).issuers
    assert issuer == Issuer(name=ODOO_A, secrets=((None, SECRET_A), ("a1", SECRET_B)), apps=("local/preview",),
                            max_connections_per_user=3)
    assert SECRET_A not in repr(issuer) and SECRET_A not in repr(Settings(issuers=(issuer,)))
    settings = Settings.from_environ({"RELAY_SHARED_SECRETS": f"k1={OLD}, k2={NEW}"})
    assert settings.shared_secrets == (("k1", OLD), ("k2", NEW)) and not settings.dev_mode
    bad = {
        json.dumps({ODOO_A: {"secret": "short"}}): "issuer 'https://odoo-a.example': each secret must be a string",
        json.dumps({ODOO_A: {"secret": SECRET_A, "max_connections": 0}}): "max_connections must be a whole number",
        json.dumps({ODOO_A: {"secret": SECRET_A, "limit": 3}}): "unknown key(s) limit",
        json.dumps({ODOO_A: {}}): "issuer 'https://odoo-a.example' has no secret",
        f"{{{SECRET_A}": "not valid JSON",
        "@/nonexistent/issuers.json": "cannot read /nonexistent/issuers.json",
    }
    for value, message in bad.items():
        with pytest.raises(ValueError) as exc:
            Settings.from_environ({"RELAY_ISSUERS": value})
        assert str(exc.value).startswith("Config 'RELAY_ISSUERS' has a bad value: ") and message in str(exc.value)
        assert SECRET_A not in str(exc.value)
    with pytest.raises(ValueError, match="^Config 'RELAY_SHARED_SECRETS' has a bad value: expected comma-separated"):
        Settings.from_environ({"RELAY_SHARED_SECRETS": OLD})
    for value, message in ((f"k1={OLD},k1={NEW}", "kid 'k1' is given twice; each kid names one secret"),
                           (f"k1={OLD},k2={NEW[:31]}", "the secret of kid 'k2' is shorter than 32 characters")):
        with pytest.raises(ValueError) as exc:
            Settings.from_environ({"RELAY_SHARED_SECRETS": value})
        assert str(exc.value) == f"Config 'RELAY_SHARED_SECRETS' has a bad value: {message}"
        assert OLD not in str(exc.value) and NEW[:31] not in str(exc.value)


async def test_connection_ends_when_its_ticket_does(make_relay) -> None:
    """A driver and a viewer whose tickets expire mid-stream are closed with TICKET_EXPIRED at exp + leeway, long
    before RELAY_MAX_SESSION_SECONDS; an API key's connection has no ticket to expire."""
    async with make_relay(ticket_leeway=0.5) as relay:
        issued = time.time()
        lifetime = 4
        session = "expiring"
        # The viewer's ticket ends a second before the driver's: each is closed by its own ticket, not by the
        # session ending with the driver.
        driver = await websockets.connect(relay.url(
            ticket=relay.ticket(session=session, role="driver", lifetime=lifetime, now=issued), session=session))
        viewer = await websockets.connect(relay.url(
            ticket=relay.ticket(sub="8", session=session, role="viewer", lifetime=lifetime, now=issued - 1),
            session=session))
        deadlines = [int(issued) + lifetime + 0.5, int(issued - 1) + lifetime + 0.5]
        keyed = await websockets.connect(relay.url(), additional_headers={"Authorization": "Key relay-key-1"})
        await driver.send(pack(prompt="until it expires", seed=1, width=64, height=64))
        assert (await next_frame(driver, timeout=15))["seed"] == 1
        assert (await next_frame(viewer))["seed"] == 1
        ends = await asyncio.gather(*(_closed_at(ws) for ws in (driver, viewer)))
        for (payload, code, at), deadline in zip(ends, deadlines, strict=True):
            assert payload == {"type": "x-fal-error", "error": "TICKET_EXPIRED",
                               "reason": "your ticket has expired; reconnect with a fresh one"}
            assert code == CloseCode.TICKET_EXPIRED
            assert deadline - 0.1 <= at <= deadline + 1.0, (at - deadline)
        await keyed.send(pack(prompt="no ticket, no expiry", seed=2, width=64, height=64))
        assert (await next_frame(keyed, timeout=15))["seed"] == 2
        await keyed.close()
    assert relay.settings.max_session_seconds == 3600


async def _closed_at(ws: Any) -> tuple[dict[str, Any], int, float]:
    """Read until the x-fal-error; return it, the close code and when the close came (epoch seconds)."""
    async with asyncio.timeout(15):
        while True:
            frame = await ws.recv()
            if isinstance(frame, str) and json.loads(frame)["type"] == "x-fal-error":
                payload = json.loads(frame)
                break
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    return payload, closed.value.rcvd.code, time.time()


def test_kid_is_in_the_header() -> None:
    """tickets.mint puts kid in the JWT header, where the relay reads it before choosing a secret."""
    assert jwt.get_unverified_header(mint(NEW, kid="2026-12"))["kid"] == "2026-12"
    assert "kid" not in jwt.get_unverified_header(mint(NEW))
