"""`GET /apps`: which apps the relay opens, for the backend that holds the shared secret, never for anyone."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from realtime_server import tickets

from .conftest import DEV_MODE, RunningRelay


async def test_apps_lists_the_relays_apps_for_a_ticket(make_relay) -> None:
    """A ticket signed with the shared secret (as Odoo mints one) in `Authorization: Bearer` gets the list."""
    async with make_relay(allowed_apps=("local/preview", "fal-ai/fast-lcm-diffusion")) as relay, \
            httpx.AsyncClient(base_url=relay.http) as http:
        response = await http.get("/apps", headers={"Authorization": f"Bearer {relay.ticket(apps=())}"})
    assert response.status_code == 200
    assert response.json() == {"apps": ["local/preview", "fal-ai/fast-lcm-diffusion"]}


async def test_apps_accepts_a_relay_key(relay: RunningRelay) -> None:
    """Scripts holding a relay API key may list the apps too."""
    async with httpx.AsyncClient(base_url=relay.http) as http:
        response = await http.get("/apps", headers={"Authorization": "Key relay-key-1"})
    assert response.status_code == 200 and response.json() == {"apps": ["local/preview"]}


def _forged() -> str:
    return tickets.mint("not-the-relays-secret-0123456789-abcdef", sub="7", apps=[], issuer="x")


def _expired(relay: RunningRelay) -> str:
    return relay.ticket(now=time.time() - 3600)


NO_CREDENTIALS = "pass a ticket as 'Authorization: Bearer <ticket>' or 'Authorization: Key <relay key>'"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, NO_CREDENTIALS),
        ({"Authorization": "Bearer"}, NO_CREDENTIALS),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, NO_CREDENTIALS),
        ({"Authorization": "Key not-a-key"}, "API key is not known to this relay"),
        ("forged", "ticket signature does not match this relay's secret"),
        ("expired", "ticket has expired; fetch a new one"),
    ],
)
async def test_apps_refused_without_valid_credentials(relay: RunningRelay, headers, reason, caplog) -> None:
    """No, forged, expired or unknown credentials get 401 with the reason, and no list."""
    if headers == "forged":
        headers = {"Authorization": f"Bearer {_forged()}"}
    elif headers == "expired":
        headers = {"Authorization": f"Bearer {_expired(relay)}"}
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(base_url=relay.http) as http:
        response = await http.get("/apps", headers=headers)
        by_query = await http.get("/apps", params={"fal_jwt_token": relay.ticket()})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["reason"] == reason and "apps" not in body
    assert body["error"] == ("TICKET_EXPIRED" if "expired" in reason else "UNAUTHORIZED")
    assert by_query.status_code == 401, "a ticket in the URL would end up in access logs: headers only"
    token = headers.get("Authorization", "").partition(" ")[2]
    if token:
        assert all(token not in record.getMessage() for record in caplog.records)


async def test_apps_in_dev_mode_needs_a_dev_ticket(make_relay) -> None:
    """In dev mode the relay's own tickets (for local pages only) list the apps; the endpoint is still not open."""
    async with make_relay(**DEV_MODE) as relay, httpx.AsyncClient(base_url=relay.http) as http:
        assert (await http.get("/apps")).status_code == 401
        ticket = (await http.post("/dev/ticket", json={})).json()["ticket"]
        response = await http.get("/apps", headers={"Authorization": f"Bearer {ticket}"})
    assert response.status_code == 200 and response.json() == {"apps": ["local/preview"]}
