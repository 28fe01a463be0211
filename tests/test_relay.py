"""Frames flow through the relay from the embedded fal app, fast paths and idle handling included."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import httpx
import msgpack
import websockets
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.server import serve

from realtime_server.local_app.renderer import RENDERER_NAME
from realtime_server.protocol import CloseCode

from .conftest import DEV_MODE, LOCAL_SESSION_TIMEOUT, RunningRelay, expect_error, next_frame, pack


async def test_ticket_client_receives_jpeg_frames(relay: RunningRelay) -> None:
    """A browser-style client with a ticket gets JPEG frames with fal's output shape."""
    async with websockets.connect(relay.url(ticket=relay.ticket())) as ws:
        await ws.send(pack(prompt="a red cat on a blue boat", seed=42))
        result = await next_frame(ws)
    image = result["images"][0]
    assert image["content"][:3] == b"\xff\xd8\xff"
    assert (image["width"], image["height"], image["content_type"]) == (512, 512, "image/jpeg")
    assert Image.open(io.BytesIO(image["content"])).size == (512, 512)
    assert result["seed"] == 42
    assert result["renderer"] == RENDERER_NAME
    assert result["timings"]["inference"] > 0


async def test_same_prompt_and_seed_give_same_picture(relay: RunningRelay) -> None:
    """Determinism holds through the relay; a new word changes the picture."""
    async with websockets.connect(relay.url(ticket=relay.ticket())) as ws:
        frames = []
        for prompt in ("a lighthouse", "a lighthouse", "a lighthouse at night"):
            await ws.send(pack(prompt=prompt, seed=7))
            frames.append((await next_frame(ws))["images"][0]["content"])
    assert frames[0] == frames[1]
    assert frames[0] != frames[2]


async def test_api_key_client_opens_any_allowed_app(relay: RunningRelay) -> None:
    """Scripts authenticate with `Authorization: Key <relay key>`."""
    headers = {"Authorization": "Key relay-key-1"}
    async with websockets.connect(relay.url(), additional_headers=headers) as ws:
        await ws.send(pack(prompt="key", seed=1))
        assert (await next_frame(ws))["seed"] == 1


async def test_upstream_idle_timeout_is_absorbed(relay: RunningRelay) -> None:
    """fal ends idle sessions with x-fal-error TIMEOUT; the client sees nothing and its next input works."""
    async with websockets.connect(relay.url(ticket=relay.ticket())) as ws:
        await ws.send(pack(prompt="before", seed=1))
        await next_frame(ws)
        opens = relay.metric("relay_upstream_opens_total")
        try:
            async with asyncio.timeout(LOCAL_SESSION_TIMEOUT + 1.5):
                unexpected = await ws.recv()
        except TimeoutError:
            unexpected = None
        assert unexpected is None, f"client saw {unexpected!r} while upstream idled out"
        await ws.send(pack(prompt="after", seed=2))
        assert (await next_frame(ws))["seed"] == 2
    assert relay.metric("relay_upstream_opens_total") == opens + 1


async def test_newest_input_wins_when_inputs_outpace_upstream(relay: RunningRelay) -> None:
    """A burst of inputs yields far fewer frames, and the last frame answers the last input."""
    async with websockets.connect(relay.url(ticket=relay.ticket())) as ws:
        for seed in range(30):
            await ws.send(pack(prompt="burst", seed=seed))
        seeds = []
        while not seeds or seeds[-1] != 29:
            seeds.append((await next_frame(ws))["seed"])
    assert seeds[-1] == 29
    assert len(seeds) < 30


async def test_health_ready_and_metrics(relay: RunningRelay) -> None:
    """/health is liveness, /ready checks the upstream, /metrics counts frames and latency."""
    async with websockets.connect(relay.url(ticket=relay.ticket())) as ws:
        await ws.send(pack(prompt="metrics", seed=3))
        await next_frame(ws)
    async with httpx.AsyncClient(base_url=relay.http) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.get("/ready")).json() == {"status": "ready"}  # the app list is /apps, behind a ticket
        text = (await http.get("/metrics")).text
    assert 'relay_frames_total{direction="in"} 1.0' in text
    assert 'relay_frames_total{direction="out"} 1.0' in text
    assert "relay_frame_latency_seconds_count 1.0" in text


async def test_ready_reports_unreachable_upstream(make_relay) -> None:
    """/ready answers 503 when the upstream cannot be reached."""
    async with make_relay(upstream_url="ws://127.0.0.1:9") as relay, httpx.AsyncClient(base_url=relay.http) as http:
        response = await http.get("/ready")
    assert response.status_code == 503


async def test_logs_never_contain_tickets_or_keys(relay: RunningRelay, caplog) -> None:
    """Connection logs name the user and app, never the ticket or the key."""
    ticket = relay.ticket()
    caplog.set_level(logging.INFO)
    async with websockets.connect(relay.url(ticket=ticket)) as ws:
        await ws.send(pack(prompt="log", seed=1))
        await next_frame(ws)
    async with websockets.connect(relay.url(ticket=ticket + "x")) as ws:
        await ws.recv()
    async with websockets.connect(relay.url(), additional_headers={"Authorization": "Key relay-key-1"}) as ws:
        await ws.send(pack(prompt="log", seed=1))
        await next_frame(ws)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "connection open sub=7 app=local/preview" in text
    assert ticket not in text and ticket.split(".")[2] not in text
    assert "relay-key-1" not in text


async def test_demo_page_and_client_are_served(relay: RunningRelay) -> None:
    """The demo page, the client module and the vendored msgpack are served with JavaScript types."""
    async with httpx.AsyncClient(base_url=relay.http) as http:
        page = await http.get("/")
        client = await http.get("/static/fal_realtime.js")
        vendor = await http.get("/static/vendor/msgpack/index.mjs")
    assert page.status_code == 200 and "demo.js" in page.text
    assert client.headers["content-type"].startswith("text/javascript")
    assert vendor.headers["content-type"].startswith("text/javascript")


async def test_static_files_are_cross_origin_only_for_allowed_origins(make_relay) -> None:
    """Pages in RELAY_ALLOWED_ORIGINS may import the widget cross-origin; other origins get no CORS header."""
    async with make_relay(allowed_origins=("https://shop.example",)) as relay, \
            httpx.AsyncClient(base_url=relay.http) as http:
        allowed = await http.get("/static/fal_live_canvas.js", headers={"Origin": "https://shop.example"})
        other = await http.get("/static/fal_realtime.js", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


async def test_dev_mode_mints_tickets_for_loopback(make_relay) -> None:
    """Without a shared secret, /dev/ticket hands loopback pages a working ticket."""
    async with make_relay(**DEV_MODE) as relay, httpx.AsyncClient(base_url=relay.http) as http:
        answer = (await http.post("/dev/ticket", json={})).json()
        assert answer["app"] == "local/preview" and answer["expires_in"] == 300
        async with websockets.connect(f"{answer['url']}?fal_jwt_token={answer['ticket']}") as ws:
            await ws.send(pack(prompt="dev", seed=5))
            assert (await next_frame(ws))["seed"] == 5


async def test_dev_ticket_is_gone_outside_dev_mode(relay: RunningRelay) -> None:
    """With a shared secret, tickets come from the backend only."""
    async with httpx.AsyncClient(base_url=relay.http) as http:
        response = await http.post("/dev/ticket", json={})
    assert response.status_code == 404
    assert json.loads(response.text) == {"error": "not found"}


async def test_dev_ticket_refuses_bad_requests(make_relay) -> None:
    """Malformed JSON or a role without a session get 400 with the reason, not a server error."""
    async with make_relay(**DEV_MODE) as relay, httpx.AsyncClient(base_url=relay.http) as http:
        garbage = await http.post("/dev/ticket", content=b"{not json")
        listed = await http.post("/dev/ticket", json=[1, 2])
        no_session = await http.post("/dev/ticket", json={"role": "viewer"})
    assert garbage.status_code == 400
    assert listed.json() == {"error": "the body must be a JSON object"}
    assert (no_session.status_code, no_session.json()) == (400, {"error": "a role needs a session"})


async def test_keepalive_is_answered_on_both_hops(make_relay) -> None:
    """An upstream and a client that both ping every 0.1 s and give up after 0.3 s without a pong
    (uvicorn, which serves fal's apps, pings every 20 s) stay connected through 1.5 s of silence."""

    async def upstream_app(ws) -> None:
        async for message in ws:
            await ws.send(message)  # an input is a msgpack map: echoing it is a valid output

    async with serve(upstream_app, "127.0.0.1", 0, ping_interval=0.1, ping_timeout=0.3) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with make_relay(upstream_url=f"ws://127.0.0.1:{port}", allowed_apps=("test/echo",)) as relay:
            async with websockets.connect(relay.url("test/echo", ticket=relay.ticket(apps=("test/echo",))),
                                          ping_interval=0.1, ping_timeout=0.3) as ws:
                await ws.send(pack(seq=1))
                assert (await next_frame(ws))["seq"] == 1
                await asyncio.sleep(1.5)
                await ws.send(pack(seq=2))
                assert (await next_frame(ws))["seq"] == 2
            assert relay.metric("relay_upstream_opens_total") == 1


async def test_an_error_waits_for_the_frame_part_way_out(make_relay) -> None:
    """The client breaks a rule while a 200 KB frame is half relayed: it gets the whole frame, then
    the x-fal-error and the close, never a close frame inside a data frame."""

    from realtime_server.frames import OP_BINARY, frame_header

    async def upstream_app(ws) -> None:
        async for _ in ws:
            payload = msgpack.packb({"seq": 1, "pad": bytes(200_000)}, use_bin_type=True)
            ws.transport.write(frame_header(OP_BINARY, len(payload)) + payload[:1000])  # half a frame, by hand
            await asyncio.sleep(0.5)
            ws.transport.write(payload[1000:])

    async with serve(upstream_app, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with make_relay(upstream_url=f"ws://127.0.0.1:{port}", allowed_apps=("test/slow",)) as relay:
            async with websockets.connect(relay.url("test/slow", ticket=relay.ticket(apps=("test/slow",))),
                                          max_size=None) as ws:
                await ws.send(pack(seq=1))
                await asyncio.sleep(0.2)  # the first 1,000 bytes are on their way to the client
                await ws.send("not an input")
                frame = await next_frame(ws)
                assert frame["seq"] == 1 and len(frame["pad"]) == 200_000
                payload = await expect_error(ws, "BAD_FRAME", 1007)
    assert payload["reason"] == "frame is not valid JSON (JSONDecodeError)"


async def test_dev_mode_admits_loopback_only(make_relay, caplog) -> None:
    """Without a shared secret the relay warns at start, and a client that is not on loopback (here one a
    local proxy forwards: uvicorn trusts X-Forwarded-For from 127.0.0.1) gets neither tickets nor frames."""
    outside = {"X-Forwarded-For": "192.0.2.2"}
    with caplog.at_level(logging.WARNING, logger="realtime_server.app"):
        async with make_relay(**DEV_MODE) as relay, httpx.AsyncClient(base_url=relay.http) as http:
            refused = await http.post("/dev/ticket", json={}, headers=outside)
            ticket = (await http.post("/dev/ticket", json={})).json()["ticket"]
            async with websockets.connect(relay.url(ticket=ticket), additional_headers=outside) as ws:
                payload = await expect_error(ws, "UNAUTHORIZED", CloseCode.POLICY_VIOLATION)
            async with websockets.connect(relay.url(ticket=ticket)) as ws:  # the same ticket, from loopback
                await ws.send(pack(prompt="dev", seed=2))
                assert (await next_frame(ws))["seed"] == 2
    assert refused.status_code == 403
    assert payload["reason"] == ("this relay runs in dev mode (no RELAY_SHARED_SECRET): dev mode admits loopback "
                                 "clients only, never through a proxy or tunnel")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(message.startswith("DEV MODE: RELAY_SHARED_SECRET is not set") for message in warnings)


async def test_sub_path_and_max_buffering_reach_upstream(make_relay) -> None:
    """`/{owner}/{alias}/{path}/realtime?max_buffering=N` opens that very endpoint upstream, with the hint;
    the ticket and anything else in the query stay behind."""
    seen: list[str] = []

    async def app(ws) -> None:
        seen.append(ws.request.path)
        async for _ in ws:
            await ws.send(msgpack.packb({"ok": True}))

    async with serve(app, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with make_relay(upstream_url=f"ws://127.0.0.1:{port}", allowed_apps=("fal-ai/some-app",)) as relay:
            ticket = relay.ticket(apps=("fal-ai/some-app",))
            for path in ("v2/realtime?max_buffering=3", "realtime"):
                async with websockets.connect(f"{relay.base}/fal-ai/some-app/{path}"
                                              f"{'&' if '?' in path else '?'}fal_jwt_token={ticket}&x=1") as ws:
                    await ws.send(pack(prompt="x"))
                    assert (await next_frame(ws)) == {"ok": True}
    assert seen == ["/fal-ai/some-app/v2/realtime?max_buffering=3", "/fal-ai/some-app/realtime"]


async def test_metrics_count_what_was_relayed(make_relay) -> None:
    """Three answered inputs, a malformed frame and a forged ticket: /metrics says exactly that."""
    async with make_relay() as relay, httpx.AsyncClient(base_url=relay.http) as http:
        inputs = [pack(prompt="counted", seed=seed) for seed in (1, 2, 3)]
        outputs = []
        async with websockets.connect(relay.url(ticket=relay.ticket())) as ws:
            for data in inputs:
                await ws.send(data)
                outputs.append(await ws.recv())
        async with websockets.connect(relay.url(ticket=relay.ticket())) as ws:
            await ws.send(b"\xc1 not msgpack")
            await expect_error(ws, "BAD_FRAME", CloseCode.INVALID_DATA)
        async with websockets.connect(relay.url(ticket="forged.ticket.value")) as ws:
            await expect_error(ws, "UNAUTHORIZED", CloseCode.POLICY_VIOLATION)
        text = (await http.get("/metrics")).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert [value("relay_frames_total", direction=d) for d in ("in", "upstream", "out")] == [3, 3, 3]
    assert value("relay_bytes_total", direction="in") == sum(map(len, inputs))
    assert value("relay_bytes_total", direction="upstream") == sum(map(len, outputs))
    assert value("relay_frame_latency_seconds_count") == 3 and value("relay_frame_latency_seconds_sum") > 0
    assert value("relay_errors_total", code="BAD_FRAME") == value("relay_errors_total", code="UNAUTHORIZED") == 1
    assert value("relay_connections_total", outcome="accepted") == 2
    assert value("relay_open_connections", role="driver") == 0
