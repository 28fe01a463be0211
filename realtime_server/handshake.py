"""The checks a handshake passes before the relay admits it: path, origin, credentials, app, session.

Each raises the `RelayError` a refused client is told (`app.py` turns it into the x-fal-error
and the close). A ticket comes as `?fal_jwt_token=` (browsers) or a relay API key as
`Authorization: Key ...` (scripts and servers); `/apps` takes a ticket as a bearer token instead,
never in the URL. Dev mode (no RELAY_SHARED_SECRET) admits loopback clients asking for a local
host name only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.websockets import WebSocket

from . import protocol, tickets
from .issuers import Issuer, Keyring
from .settings import Settings
from .upstream import Target

_APP_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# What a percent-decoded sub-path may not carry into the upstream request line: a query, a fragment,
# white space or a control character (CR and LF included).
_NOT_IN_PATH = re.compile(r"[?#\s\x00-\x1f\x7f]")
_BUFFERING = re.compile(r"[0-9]{1,2}")

# Headers that proxies, tunnels and load balancers add: a request carrying any of them came through
# something that may be forwarding the outside world, whatever address the socket shows.
_PROXY_HEADERS = (
    "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "x-client-ip",
    "x-cluster-client-ip", "cf-connecting-ip", "true-client-ip", "fastly-client-ip", "via",
)


def is_local_peer(client: tuple[str, int] | None, headers: Headers) -> bool:
    """Dev mode's test: a loopback peer that no proxy or tunnel header says is someone else."""
    try:
        loopback = client is not None and ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False
    return loopback and not any(name in headers for name in _PROXY_HEADERS)


# Dev mode answers only requests addressed to the machine itself by name: a page on another site whose
# name was rebound to 127.0.0.1 is same-origin with the relay but says its own name in `Host`
# (Vite's and webpack-dev-server's `allowedHosts` keep the same list).
_LOCAL_HOST = re.compile(r"(?:localhost|127\.0\.0\.1|\[::1\])(?::[0-9]{1,5})?")


def dev_refusal(client: tuple[str, int] | None, headers: Headers) -> str | None:
    """Why dev mode refuses this request (a dev ticket asked for or used), or None if it may go on."""
    if not is_local_peer(client, headers):
        return "dev mode admits loopback clients only, never through a proxy or tunnel"
    if not _LOCAL_HOST.fullmatch(headers.get("host", "").lower()):
        return "dev mode answers requests for localhost, 127.0.0.1 or [::1] only, not another host name"
    return None


def parse_target(websocket: WebSocket) -> Target:
    """The app, sub-path and `max_buffering` a handshake asks for, as fal's paths spell them."""
    params = websocket.path_params
    owner, alias = params["owner"], params["alias"]
    sub_path = params.get("path", "")
    if not (_APP_PART.match(owner) and _APP_PART.match(alias)) or ".." in sub_path:
        raise protocol.AppNotAllowed(f"'{owner}/{alias}' is not a valid app id")
    if _NOT_IN_PATH.search(sub_path):
        raise protocol.BadRequest("the path may not hold '?', '#', white space or control characters")
    raw = websocket.query_params.get("max_buffering")
    max_buffering = None
    if raw is not None:
        if not _BUFFERING.fullmatch(raw) or not 1 <= int(raw) <= 60:
            raise protocol.BadRequest("max_buffering must be a whole number from 1 to 60")
        max_buffering = int(raw)
    path = f"{sub_path}/realtime" if sub_path else "realtime"
    return Target(app=f"{owner}/{alias}", path=path, max_buffering=max_buffering)


def check_origin(websocket: WebSocket, settings: Settings) -> None:
    """Browsers send Origin; scripts usually don't. Same-origin pages and the allowlist pass."""
    origin = websocket.headers.get("origin")
    if origin is None or "*" in settings.allowed_origins or origin in settings.allowed_origins:
        return
    if urlsplit(origin).netloc == websocket.headers.get("host"):
        return
    raise protocol.OriginNotAllowed(f"origin {origin} may not use this relay; add it to RELAY_ALLOWED_ORIGINS")


def keyring(settings: Settings, dev_secret: str) -> Keyring:
    """The issuers of `RELAY_ISSUERS`, and the relay-wide secrets for any other issuer (the kid-less
    `RELAY_SHARED_SECRET` beside `RELAY_SHARED_SECRETS`' kid=secret pairs; in dev mode, its own)."""
    shared: list[tuple[str | None, str]] = list(settings.shared_secrets)
    if settings.shared_secret or settings.dev_mode:
        shared.insert(0, (None, settings.shared_secret or dev_secret))
    return Keyring(settings.issuers, Issuer(name="", secrets=tuple(shared)) if shared else None)


def authenticate(websocket: WebSocket, settings: Settings, keys: Keyring) -> tickets.Ticket:
    """A ticket in `?fal_jwt_token=`, or a relay API key as `Authorization: Key ...`."""
    token = websocket.query_params.get("fal_jwt_token")
    if token:
        if settings.dev_mode and (refusal := dev_refusal(websocket.client, websocket.headers)):
            raise protocol.Unauthorized(f"this relay runs in dev mode (no RELAY_SHARED_SECRET): {refusal}")
        return tickets.verify(keys, token, leeway=settings.ticket_leeway)
    scheme, _, key = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "key" and key:
        return api_key_ticket(key, settings)
    raise protocol.Unauthorized("no ticket: pass ?fal_jwt_token=<ticket> or 'Authorization: Key <relay key>'")


def api_key_ticket(key: str, settings: Settings) -> tickets.Ticket:
    """A relay API key as the ticket it stands for: any app, no expiry, a `sub` that names the key by its hash."""
    for known in settings.api_keys:
        if hmac.compare_digest(key.encode(), known.encode()):
            digest = hashlib.sha256(key.encode()).hexdigest()[:12]
            return tickets.Ticket(sub=f"key:{digest}", apps=("*",), issuer="api-key", expires_at=None)
    raise protocol.Unauthorized("API key is not known to this relay")


def authenticate_request(request: Request, settings: Settings, keys: Keyring) -> tickets.Ticket:
    """An HTTP caller of `/apps`: a ticket as `Authorization: Bearer` (never in the URL, so never logged), or a key.

    In dev mode the secret is random, so the only tickets are those /dev/ticket gave to local pages.
    """
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return tickets.verify(keys, credential.strip(), leeway=settings.ticket_leeway)
    if scheme.lower() == "key" and credential.strip():
        return api_key_ticket(credential.strip(), settings)
    raise protocol.Unauthorized("pass a ticket as 'Authorization: Bearer <ticket>' or 'Authorization: Key <relay key>'")


def check_app(target: Target, ticket: tickets.Ticket, settings: Settings) -> None:
    """The app must be served by this relay, allowed by the ticket, and by the ticket's issuer."""
    if target.app not in settings.apps:
        raise protocol.AppNotAllowed(f"app {target.app} is not served by this relay")
    if not ticket.allows(target.app):
        raise protocol.AppNotAllowed(f"your ticket does not allow app {target.app}")
    if ticket.tenant is not None and not ticket.tenant.allows(target.app):
        raise protocol.AppNotAllowed(f"app {target.app} is not allowed for your ticket's issuer")


def check_session_param(websocket: WebSocket, ticket: tickets.Ticket) -> None:
    """`?session=` exists for load balancers to route on; it must match the ticket's own session."""
    routed = websocket.query_params.get("session")
    if routed is not None and routed != ticket.session:
        raise protocol.BadRequest("the session query parameter does not match the ticket's session")
