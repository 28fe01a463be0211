"""/metrics is for the operator: loopback, a bearer token or a listener of its own, and no unbounded labels."""

from __future__ import annotations

import asyncio

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from realtime_server.cli import free_port
from realtime_server.metrics import LATENCY_BUCKETS
from realtime_server.protocol import ErrorCode

from .conftest import next_frame, pack

PROXIED = {"X-Forwarded-For": "203.0.113.9"}  # as nginx in front passes a remote client on


async def test_metrics_answer_loopback_only_by_default(relay) -> None:
    """With no token and no metrics port, a scrape relayed for a remote client is refused; loopback reads."""
    async with httpx.AsyncClient(base_url=relay.http) as http:
        remote = await http.get("/metrics", headers=PROXIED)
        local = await http.get("/metrics")
    assert remote.status_code == 403
    assert remote.json() == {"error": "metrics are served to loopback only; set RELAY_METRICS_TOKEN or "
                                      "RELAY_METRICS_PORT"}
    assert local.status_code == 200 and "relay_open_connections" in local.text


async def test_metrics_token_is_required_when_set(make_relay) -> None:
    """RELAY_METRICS_TOKEN: no header, another scheme or a wrong token get 401, from anywhere; the token reads."""
    async with make_relay(metrics_token="scrape-me-0123456789") as relay, \
            httpx.AsyncClient(base_url=relay.http) as http:
        refused = [
            await http.get("/metrics"),
            await http.get("/metrics", headers={"Authorization": "Basic scrape-me-0123456789"}),
            await http.get("/metrics", headers={"Authorization": "Bearer scrape-me-012345678"}),
        ]
        allowed = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789", **PROXIED})
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert all(r.headers["www-authenticate"] == "Bearer" for r in refused)
    assert all("scrape-me" not in r.text for r in refused)
    assert allowed.status_code == 200 and "relay_frames_total" in allowed.text


async def test_metrics_on_their_own_listener(make_relay) -> None:
    """RELAY_METRICS_PORT: /metrics is served there (with what the relay counted) and no longer on the public port."""
    port = free_port()
    async with make_relay(metrics_port=port) as relay, httpx.AsyncClient() as http:
        async with websockets.connect(relay.url(ticket=relay.ticket())) as ws:
            await ws.send(pack(prompt="counted", seed=1))
            await next_frame(ws)
        public = await http.get(f"{relay.http}/metrics")
        private = await http.get(f"http://127.0.0.1:{port}/metrics", headers=PROXIED)
        assert (await http.get(f"{relay.http}/health")).status_code == 200
    assert public.status_code == 404
    assert private.status_code == 200
    assert 'relay_frames_total{direction="in"} 1.0' in private.text
    async with httpx.AsyncClient() as http:  # the listener went with the relay
        try:
            await http.get(f"http://127.0.0.1:{port}/metrics")
            raise AssertionError("the metrics listener outlived the relay")
        except httpx.ConnectError:
            pass


async def test_no_label_names_a_session_or_user(make_relay) -> None:
    """With two live sessions watched, every label value is from a small closed set: no session id, no user id."""
    async with make_relay() as relay:
        sockets = []
        for session, watchers in (("secret-session-a1", 3), ("secret-session-b2", 1)):
            driver = await websockets.connect(
                relay.url(ticket=relay.ticket(sub="user-4242", session=session, role="driver"), session=session))
            sockets.append(driver)
            await driver.send(pack(prompt="watched", seed=2))
            await next_frame(driver)
            for _ in range(watchers):
                sockets.append(await websockets.connect(
                    relay.url(ticket=relay.ticket(sub="user-99", session=session, role="viewer"), session=session)))
                await next_frame(sockets[-1])
        async with httpx.AsyncClient(base_url=relay.http) as http:
            text = (await http.get("/metrics")).text
        await asyncio.gather(*(ws.close() for ws in sockets))
    assert "relay_session_viewers{" not in text
    assert "secret-session" not in text and "user-4242" not in text and "user-99" not in text
    closed = {
        "direction": {"in", "upstream", "out"},
        "role": {"driver", "viewer"},
        "code": {code.value for code in ErrorCode},
        "outcome": {"accepted"} | {code.value for code in ErrorCode},
        "le": {"+Inf"} | {str(float(b)) for b in (*LATENCY_BUCKETS, 0, 1, 10, 100, 1000, 10000)},
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for key, value in sample.labels.items():
                assert value in closed.get(key, set()), (sample.name, key, value)
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}
    assert samples["relay_session_viewers"] == 4 and samples["relay_session_viewers_max"] == 3
    assert samples["relay_live_sessions"] == 2
