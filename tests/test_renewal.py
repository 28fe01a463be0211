"""The browser client moves to a renewed ticket before the relay ends its connection with TICKET_EXPIRED:
real Chromium running static/fal_realtime.js against a real relay with 4-second tickets."""

from __future__ import annotations

import asyncio
import json
import time

import msgpack
import websockets

from realtime_server import tickets

from .browser import chromium
from .conftest import SECRET, expect_error, next_frame, pack
from .reliability import wait_for
from .upstreams import FAULT_APPS, fault_upstream, switchable_upstream

LIFETIME = 4  # seconds; `iat` is whole seconds, so a ticket may have one second less: the page is told 3
SESSION = "renewed-session"

CLIENTS = """async () => {
    const { RealtimeClient } = await import("/static/fal_realtime.js");
    window.log = {};
    const make = (name, role) => {
        const log = window.log[name] = { states: [], errors: [], frames: [] };
        const client = new RealtimeClient({ getTicket: () => window.mintTicket(role) });
        client.addEventListener("statechange", (e) => log.states.push(e.detail.state));
        client.addEventListener("error", (e) => log.errors.push(e.detail.code));
        client.addEventListener("frame", (e) => log.frames.push([performance.now(), e.detail.result.seed]));
        return client;
    };
    window.driver = make("driver", "driver");
    window.viewer = make("viewer", "viewer");
    let seed = 0;
    window.driver.send({ prompt: "renewed", seed, width: 64, height: 64 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    window.viewer.connect();
    const type = () => window.driver.send({ prompt: "renewed", seed: ++seed, width: 64, height: 64 });
    window.typing = setInterval(type, 150);
}"""


async def test_client_renews_and_moves_over_before_the_ticket_ends(make_relay) -> None:
    """Over three ticket lifetimes a driver of a live session and its viewer each move to fresh tickets: no error,
    no state change after "open", no gap in frames, the session never ends, and no connection is cut by the relay."""
    async with make_relay(ticket_leeway=0.5) as relay, chromium() as browser:
        minted: list[str] = []

        def mint_ticket(role: str) -> dict[str, object]:
            minted.append(role)
            ticket = tickets.mint(SECRET, sub=role, apps=["local/preview"], issuer="tests", lifetime=LIFETIME,
                                  session=SESSION, role=role)
            return {"url": relay.url(session=SESSION), "ticket": ticket, "expires_in": LIFETIME - 1}

        page = await browser.new_page()
        await page.expose_function("mintTicket", mint_ticket)
        await page.goto(f"{relay.http}/health")
        await page.evaluate(CLIENTS)
        started = time.monotonic()
        await asyncio.sleep(3 * LIFETIME)
        await page.evaluate("clearInterval(window.typing)")
        await asyncio.sleep(1.5)  # the last frames arrive
        log = await page.evaluate("window.log")
        last_seed = log["driver"]["frames"][-1][1]
        await page.evaluate("window.driver.close(); window.viewer.close()")
        elapsed = time.monotonic() - started

    for name in ("driver", "viewer"):
        assert log[name]["errors"] == [], (name, log[name]["errors"])
        assert log[name]["states"] == ["connecting", "open"], (name, log[name]["states"])
        times = [at for at, _ in log[name]["frames"]]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert len(times) > 20 and max(gaps) < 1000, (name, len(times), max(gaps, default=None))
        assert times[-1] - times[0] > (elapsed - 3.5) * 1000  # frames until the end, not just at the start
    assert minted.count("driver") >= 3 and minted.count("viewer") >= 3, minted
    assert [seed for _, seed in log["viewer"]["frames"]][-1] == last_seed  # the viewer still sees the driver
    assert relay.metric("relay_connections_total", outcome="accepted") >= 6
    assert relay.metric("relay_errors_total", code="TICKET_EXPIRED") == 0
    assert relay.metric("relay_errors_total", code="SESSION_ENDED") == 0
    assert relay.metric("relay_errors_total", code="SESSION_BUSY") == 0


async def test_takeover_is_the_drivers_own(make_relay) -> None:
    """`?takeover=1` hands a live session's seat only to its driver's own user: another user still gets
    SESSION_BUSY, the older connection's frames stop reaching the viewers, and it leaving ends nothing."""
    async with make_relay() as relay:
        def url(sub: str, role: str, **query: str) -> str:
            ticket = tickets.mint(SECRET, sub=sub, apps=["local/preview"], issuer="tests", session=SESSION, role=role)
            return relay.url(ticket=ticket, session=SESSION, **query)

        old = await websockets.connect(url("7", "driver"))
        await old.send(pack(prompt="old", seed=1, width=64, height=64))
        assert (await next_frame(old))["seed"] == 1
        viewer = await websockets.connect(url("8", "viewer"))
        assert (await next_frame(viewer))["seed"] == 1
        async with websockets.connect(url("9", "driver", takeover="1")) as other:
            await expect_error(other, "SESSION_BUSY", 1013)
        new = await websockets.connect(url("7", "driver", takeover="1"))
        await new.send(pack(prompt="new", seed=2, width=64, height=64))
        assert (await next_frame(new))["seed"] == 2
        assert (await next_frame(viewer))["seed"] == 2
        await old.send(pack(prompt="old", seed=3, width=64, height=64))
        assert (await next_frame(old))["seed"] == 3  # the old connection still works for its own client
        await old.close()
        await new.send(pack(prompt="new", seed=4, width=64, height=64))
        assert (await next_frame(viewer))["seed"] == 4  # not 3: the old one's frames no longer reach viewers
        assert relay.metric("relay_live_sessions") == 1
        await new.close()
        async with asyncio.timeout(10):  # the seat's holder left: the viewer stays and waits for a driver
            assert json.loads(await viewer.recv())["action"] == "session_waiting"
        assert relay.metric("relay_live_sessions") == 0


async def test_a_failed_takeover_gives_the_seat_back(make_relay) -> None:
    """A takeover socket that fails before it relays a frame (upstream refused, then an upstream error, then
    dropped by its client) leaves the seat with the older connection: the viewer is never told the driver
    left and keeps getting the older connection's frames, another driver is still busy, the counts stay."""
    async with switchable_upstream() as switch, \
            make_relay(upstream_url=switch.url, allowed_apps=("fault/switch",)) as relay:
        def url(sub: str, role: str, **query: str) -> str:
            ticket = tickets.mint(SECRET, sub=sub, apps=["fault/switch"], issuer="tests", session=SESSION, role=role)
            return relay.url("fault/switch", ticket=ticket, session=SESSION, **query)

        async def seen(ws: websockets.ClientConnection) -> int:
            async with asyncio.timeout(5):
                frame = await ws.recv()
            assert isinstance(frame, bytes), frame  # a text frame here would be a session notice
            return msgpack.unpackb(msgpack.unpackb(frame)["input"])["seq"]

        hub = relay.app.state.sessions
        async with websockets.connect(url("7", "driver")) as old, websockets.connect(url("8", "viewer")) as viewer:
            await old.send(pack(seq=1))
            assert await seen(old) == 1 and await seen(viewer) == 1
            for mode, error, code in (("refuse", "UPSTREAM_UNAVAILABLE", 1013), ("error", "MODEL_FAILED", 1011)):
                switch.mode = mode
                async with websockets.connect(url("7", "driver", takeover="1")) as failed:
                    await failed.send(pack(seq=0))
                    await expect_error(failed, error, code)
                switch.mode = "ok"
                await old.send(pack(seq=2))
                assert await seen(old) == 2 and await seen(viewer) == 2
            dropped = await websockets.connect(url("7", "driver", takeover="1"))
            dropped.transport.abort()  # the handover socket dies before it has drawn anything
            await wait_for(lambda: relay.metric("relay_open_connections", role="driver") == 1, what="handover gone")
            await old.send(pack(seq=3))
            assert await seen(old) == 3 and await seen(viewer) == 3
            async with websockets.connect(url("9", "driver")) as other:
                await expect_error(other, "SESSION_BUSY", 1013)
            assert relay.metric("relay_live_sessions") == 1 and hub._driven == {("tests", "7"): 1}
        await wait_for(lambda: not hub.sessions, what="session released")
        assert relay.metric("relay_live_sessions") == 0 and hub._driven == {}


SHORT = 3  # seconds a ticket lives in the tests below (`exp - iat`)

DRIVER_ONLY = """async ({ throttleMs }) => {
    const { RealtimeClient } = await import("/static/fal_realtime.js");
    window.log = { states: [], errors: [], frames: [] };
    const client = window.driver = new RealtimeClient({ getTicket: () => window.mintTicket(), throttleMs });
    client.addEventListener("statechange", (e) => window.log.states.push(e.detail.state));
    client.addEventListener("error", (e) => window.log.errors.push(e.detail.code));
    client.addEventListener("frame", (e) => window.log.frames.push(e.detail.result.seed ?? e.detail.result.echo));
    window.type = (seed) => client.send({ prompt: "renewed", seed, seq: seed, width: 64, height: 64 });
}"""


async def test_the_tickets_own_exp_schedules_the_renewal(make_relay) -> None:
    """A ticket endpoint that omits `expires_in`: the client reads the lifetime from the ticket's `exp` and moves
    to a fresh ticket before each 3-second ticket ends (it assumed 300 s, and the relay ended it)."""
    async with make_relay(ticket_leeway=0.5) as relay, chromium() as browser:
        minted = 0

        def mint_ticket() -> dict[str, object]:
            nonlocal minted
            minted += 1
            return {"url": relay.url(), "ticket": tickets.mint(SECRET, sub="7", apps=["local/preview"],
                                                              issuer="tests", lifetime=SHORT)}

        page = await browser.new_page()
        await page.expose_function("mintTicket", mint_ticket)
        await page.goto(f"{relay.http}/health")
        await page.evaluate(DRIVER_ONLY, {"throttleMs": 0})
        for seed in range(40):  # 10 s: three ticket lifetimes and more
            await page.evaluate("(seed) => window.type(seed)", seed)
            await asyncio.sleep(0.25)
        await asyncio.sleep(1)
        log = await page.evaluate("window.log")
        await page.evaluate("window.driver.close()")
    assert log["errors"] == [] and log["states"] == ["connecting", "open"], log
    assert log["frames"][-1] == 39 and minted >= 4, (log["frames"][-5:], minted)
    assert relay.metric("relay_errors_total", code="TICKET_EXPIRED") == 0


async def test_an_input_on_a_refused_handover_is_sent_on_the_socket_that_stays(make_relay) -> None:
    """The renewed ticket is refused (its signature is not the relay's): the input that went out on the handover
    socket only is sent again on the old socket, which carries on; nothing is lost, no error is shown."""
    async with fault_upstream() as upstream, make_relay(upstream_url=upstream, allowed_apps=FAULT_APPS,
                                                        ticket_leeway=30) as relay, chromium() as browser:
        minted = 0

        def mint_ticket() -> dict[str, object]:  # fault/echo answers each input at once with its `seq`
            nonlocal minted
            minted += 1
            secret = SECRET if minted == 1 else "not-this-relays-secret-0123456789abcdef"
            return {"url": relay.url("fault/echo"), "ticket": tickets.mint(
                secret, sub="7", apps=["fault/echo"], issuer="tests", lifetime=5 if minted == 1 else 300)}

        page = await browser.new_page()
        await page.expose_function("mintTicket", mint_ticket)
        await page.goto(f"{relay.http}/health")
        await page.evaluate(DRIVER_ONLY, {"throttleMs": 6000})  # the second input waits; the renewal (at 4 s) takes it
        await page.evaluate("window.type(1)")
        await page.wait_for_function("window.log.frames.includes(1)", timeout=10_000)
        await page.evaluate("window.type(2)")
        assert minted == 1
        async with asyncio.timeout(15):
            while minted < 2 or 2 not in (log := await page.evaluate("window.log"))["frames"]:
                await asyncio.sleep(0.1)
        await page.evaluate("window.driver.close()")
    assert log["frames"] == [1, 2] and log["errors"] == [] and log["states"] == ["connecting", "open"], log
    assert relay.metric("relay_errors_total", code="UNAUTHORIZED") == 1  # the handover socket, refused


async def test_one_reader_of_control_frames_tells_a_refusal_from_a_rejected_input(make_relay) -> None:
    """`readControl`, which both the connection and a handover socket use: an app's validation error names the
    field it rejected (a handover socket carrying that input is no refused one); any other x-fal-error is a
    refusal; x-fal-message and text that is not the relay's are told apart."""
    async with make_relay() as relay, chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{relay.http}/health")
        read = await page.evaluate("""async () => {
            const { readControl } = await import("/static/fal_realtime.js");
            const rejected = JSON.stringify({ type: "x-fal-error", error: "INTERNAL_ERROR",
                reason: "1 validation error for Input\\nseed\\n  Input should be a valid integer [type=int_type]" });
            const refused = JSON.stringify({ type: "x-fal-error", error: "UNAUTHORIZED", reason: "no ticket" });
            const message = JSON.stringify({ type: "x-fal-message", action: "session_live" });
            return [rejected, refused, message, "not JSON", "[1]"].map((text) => {
                const { kind, rejected: field } = readControl(text);
                return [kind, field && field.field];
            });
        }""")
    assert read == [["error", "seed"], ["error", None], ["message", None], ["other", None], ["other", None]]


REJECTED_ON_HANDOVER = """async () => {
    const { RealtimeClient } = await import("/static/fal_realtime.js");
    window.log = { errors: [], inputErrors: [], frames: [] };
    // The page lets a negative seed out, so the app's own validation is what refuses it.
    const client = window.driver = new RealtimeClient({
        getTicket: () => window.mintTicket(), throttleMs: 8000, limits: { seed: { min: -10, max: 100, integer: true } },
    });
    client.addEventListener("error", (e) => window.log.errors.push(e.detail.code));
    client.addEventListener("frame", (e) => window.log.frames.push(e.detail.result.seed));
    client.addEventListener("inputerror", (e) => e.detail && window.log.inputErrors.push(
        [e.detail.field, e.detail.fromApp, performance.now() - window.typedAt]));
    window.type = (seed) => {
        window.typedAt = performance.now();
        client.send({ prompt: "renewed", seed, width: 64, height: 64 });
    };
}"""


async def test_an_input_the_app_rejects_on_the_handover_socket_is_no_refusal(make_relay) -> None:
    """The input the handover socket carries is one the app's validation rejects: the handover reads that with
    the connection's own reader, as the input's fault, and takes over; the input error names the field at once,
    not after the old socket's throttle would have sent the input again, and no error is shown."""
    async with make_relay(ticket_leeway=30) as relay, chromium() as browser:

        def mint_ticket() -> dict[str, object]:
            return {"url": relay.url(), "ticket": tickets.mint(SECRET, sub="7", apps=["local/preview"],
                                                              issuer="tests", lifetime=5)}

        page = await browser.new_page()
        await page.expose_function("mintTicket", mint_ticket)
        await page.goto(f"{relay.http}/health")
        await page.evaluate(REJECTED_ON_HANDOVER)
        await page.evaluate("window.type(1)")
        await page.wait_for_function("window.log.frames.includes(1)", timeout=10_000)
        await page.evaluate("window.type(-1)")  # waits for the throttle (8 s); the renewal (at 4 s) takes it
        await page.wait_for_function("window.log.inputErrors.length > 0", timeout=15_000)
        log = await page.evaluate("window.log")
        await page.evaluate("window.driver.close()")
    [(field, from_app, after_ms)] = log["inputErrors"]
    assert (field, from_app, log["errors"]) == ("seed", True, []), log
    assert after_ms < 6000, log  # a dropped handover would give the input back to the throttled old socket (8 s)
