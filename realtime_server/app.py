"""The relay's ASGI app: fal's realtime paths, health and metrics, the demo page.

`create_app(settings)` builds everything once; the WebSocket endpoint authenticates the
handshake, admits the connection against the limits, runs a `Relay`, and turns any
`RelayError` into one x-fal-error frame and a close.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import mimetypes
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from . import protocol, tickets
from .issuers import Issuer, Keyring
from .limits import ConnectionLimits
from .metrics import Metrics
from .protocol import RelayError
from .relay import Relay, SplicedConnection
from .serving import SPLICE_EXTENSION, serve_beside
from .sessions import SessionHub
from .settings import Settings
from .upstream import Target

logger = logging.getLogger(__name__)
mimetypes.add_type("text/javascript", ".mjs")  # module scripts need a JavaScript type; not every OS maps .mjs

# In a checkout realtime_server/static links to ../static; installed, it is the files (see pyproject.toml).
STATIC_DIR = (Path(__file__).resolve().parent / "static").resolve()
_APP_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# What a percent-decoded sub-path may not carry into the upstream request line: a query, a fragment,
# white space or a control character (CR and LF included).
_NOT_IN_PATH = re.compile(r"[?#\s\x00-\x1f\x7f]")
_BUFFERING = re.compile(r"[0-9]{1,2}")
_QUERY_PARAM = re.compile(r"([?&])([^=&\s\"'#]+)=([^&\s\"'#]*)")
_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def _redact_query(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        # Compare the name as the relay decodes it: `fal%5Fjwt%5Ftoken` is a ticket too.
        if unquote_plus(match.group(2)) == "fal_jwt_token":
            return f"{match.group(1)}{match.group(2)}=[redacted]"
        return match.group(0)

    return _QUERY_PARAM.sub(replace, text) if "=" in text else text


class RedactSecrets(logging.Filter):
    """Keep tickets and keys out of log lines.

    uvicorn logs each WebSocket path with its query string, and at debug level websockets logs
    every handshake header, `Authorization` (relay keys, fal's key) included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            if len(args) == 2 and str(args[0]).lower() in _SECRET_HEADERS:
                args = (args[0], "[redacted]")
            record.args = tuple(_redact_query(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = _redact_query(record.msg)
        return True


# Loggers that see handshakes: uvicorn's (the client side) and websockets' client (the upstream side).
_HANDSHAKE_LOGGERS = ("uvicorn.error", "websockets.client")


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
        return _api_key(key, settings)
    raise protocol.Unauthorized("no ticket: pass ?fal_jwt_token=<ticket> or 'Authorization: Key <relay key>'")


def _api_key(key: str, settings: Settings) -> tickets.Ticket:
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
        return _api_key(credential.strip(), settings)
    raise protocol.Unauthorized("pass a ticket as 'Authorization: Bearer <ticket>' or 'Authorization: Key <relay key>'")


def check_app(target: Target, ticket: tickets.Ticket, settings: Settings) -> None:
    if target.app not in settings.apps:
        raise protocol.AppNotAllowed(f"app {target.app} is not served by this relay")
    if not ticket.allows(target.app):
        raise protocol.AppNotAllowed(f"your ticket does not allow app {target.app}")
    if ticket.tenant is not None and not ticket.tenant.allows(target.app):
        raise protocol.AppNotAllowed(f"app {target.app} is not allowed for your ticket's issuer")


def end_with_ticket(connection: SplicedConnection, ticket: tickets.Ticket, settings: Settings) -> None:
    """A connection lives until its ticket expires (plus the leeway) if that comes before its max session."""
    if ticket.expires_at is None:
        return
    left = ticket.expires_at + settings.ticket_leeway - time.time()
    if left < connection.lifetime:
        connection.lifetime = max(left, 0.0)
        connection.lifetime_error = protocol.TicketExpired("your ticket has expired; reconnect with a fresh one")


def metrics_refusal(request: Request, settings: Settings) -> Response | None:
    """/metrics is for the operator: a bearer token when one is set, else its own listener or loopback only."""
    if settings.metrics_token:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), settings.metrics_token.encode()):
            return None
        return JSONResponse({"error": "metrics need 'Authorization: Bearer <RELAY_METRICS_TOKEN>'"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    if settings.metrics_port is not None or is_local_peer(request.client, request.headers):
        return None
    return JSONResponse({"error": "metrics are served to loopback only; set RELAY_METRICS_TOKEN or "
                                  "RELAY_METRICS_PORT"}, status_code=403)


def check_session_param(websocket: WebSocket, ticket: tickets.Ticket) -> None:
    """`?session=` exists for load balancers to route on; it must match the ticket's own session."""
    routed = websocket.query_params.get("session")
    if routed is not None and routed != ticket.session:
        raise protocol.BadRequest("the session query parameter does not match the ticket's session")


def _count_error(exc: RelayError, metrics: Metrics) -> None:
    metrics.errors.labels(exc.error.value).inc()


async def _send_error(websocket: WebSocket, exc: RelayError, metrics: Metrics) -> None:
    if websocket.application_state is WebSocketState.CONNECTING:
        await websocket.accept()
    _count_error(exc, metrics)
    try:
        await websocket.send_text(exc.frame())
        await websocket.close(exc.close_code, protocol.close_reason(exc.reason))
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass


def create_app(settings: Settings) -> Starlette:
    """Build the relay for `settings`; the upstream URL must already be resolved."""
    metrics = Metrics()
    metrics.connection_limit.set(settings.max_connections)
    limits = ConnectionLimits(settings)
    hub = SessionHub(settings, metrics)
    secret = settings.shared_secret or secrets.token_urlsafe(32)  # in dev mode, the relay's own
    keys = keyring(settings, secret)
    for name in _HANDSHAKE_LOGGERS:
        handshake_logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in handshake_logger.filters):
            handshake_logger.addFilter(RedactSecrets())
    if settings.dev_mode:
        logger.warning(
            "DEV MODE: RELAY_SHARED_SECRET is not set. The relay mints its own tickets at /dev/ticket and "
            "admits loopback clients asking for localhost only. Set RELAY_SHARED_SECRET before exposing it."
        )
    if settings.dev_mode and settings.uses_fal_cloud:
        logger.warning(
            "DEV MODE WITH FAL_KEY (RELAY_DEV_MODE=1): anyone who appears as loopback gets tickets and spends "
            "this key's fal credits; a tunnel, a TCP load balancer or a published container port can make the "
            "whole network appear so. Requests with proxy headers are refused, but unset RELAY_DEV_MODE and set "
            "RELAY_SHARED_SECRET for anything but a laptop."
        )

    async def realtime(websocket: WebSocket) -> None:
        peer = websocket.client.host if websocket.client else "-"
        try:
            target = parse_target(websocket)
            check_origin(websocket, settings)
            ticket = authenticate(websocket, settings, keys)
            check_app(target, ticket, settings)
            check_session_param(websocket, ticket)
            if SPLICE_EXTENSION not in websocket.scope.get("extensions", {}):
                raise protocol.RelayError("the relay must be served by realtime_server.serving (realtime-server)")
            role = ticket.role or "driver"
            with limits.admit(ticket), ExitStack() as stack:
                session, viewer, publish = None, None, None
                if role == "viewer":
                    session, viewer = stack.enter_context(hub.watch(ticket, target.app))
                elif ticket.session is not None:
                    takeover = websocket.query_params.get("takeover") == "1"
                    publish = stack.enter_context(hub.drive(ticket, target.app, takeover))
                metrics.connections.labels(role).inc()
                stack.callback(metrics.connections.labels(role).dec)
                metrics.connections_total.labels("accepted").inc()
                logger.info(
                    "connection open sub=%s app=%s role=%s session=%s peer=%s",
                    ticket.sub, target.app, role, ticket.session or "-", peer,
                )
                # Both close their own sockets: spliced frames bypass Starlette's WebSocket.
                if session is not None and viewer is not None:
                    end_with_ticket(viewer, ticket, settings)
                    error = await viewer.run(websocket, session)
                else:
                    relay = Relay(settings, target, metrics, publish)
                    end_with_ticket(relay, ticket, settings)
                    error = await relay.run(websocket)
                if error is not None:
                    metrics.connections_total.labels(error.error.value).inc()
                    _count_error(error, metrics)
                    logger.info("connection ended sub=%s app=%s role=%s error=%s reason=%s",
                                ticket.sub, target.app, role, error.error, error.reason)
                else:
                    logger.info("connection closed sub=%s app=%s role=%s", ticket.sub, target.app, role)
        except RelayError as exc:
            logger.info("connection refused or ended peer=%s error=%s reason=%s", peer, exc.error, exc.reason)
            metrics.connections_total.labels(exc.error.value).inc()
            await _send_error(websocket, exc, metrics)
        except WebSocketDisconnect:
            pass
        except Exception:
            logger.error("connection handler failed peer=%s", peer, exc_info=True)
            await _send_error(websocket, protocol.RelayError("the relay failed; please reconnect"), metrics)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        url = urlsplit(settings.resolved_upstream_url())
        port = url.port or (443 if url.scheme == "wss" else 80)
        try:
            async with asyncio.timeout(2.0):
                _, writer = await asyncio.open_connection(url.hostname, port)
            writer.close()
        except (OSError, TimeoutError):
            return JSONResponse({"status": "upstream unreachable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def apps(request: Request) -> Response:
        """The app ids this relay opens, for a backend that holds the secret (Odoo's settings compare them)."""
        try:
            caller = authenticate_request(request, settings, keys)
        except RelayError as exc:
            return JSONResponse({"error": exc.error.value, "reason": exc.reason}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="fal-realtime"'})
        logger.info("apps listed sub=%s", caller.sub)
        tenant = caller.tenant
        return JSONResponse({"apps": [app for app in settings.apps if tenant is None or tenant.allows(app)]})

    async def metrics_endpoint(request: Request) -> Response:
        refusal = metrics_refusal(request, settings)
        if refusal is not None:
            return refusal
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        """With RELAY_METRICS_PORT, /metrics has a listener of its own (and none on the public port)."""
        if settings.metrics_port is None:
            yield
            return
        metrics_app = Starlette(routes=[Route("/metrics", metrics_endpoint)])
        async with serve_beside(metrics_app, settings.metrics_host, settings.metrics_port):
            logger.info("metrics served at http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
            yield

    async def dev_ticket(request: Request) -> Response:
        """In dev mode only, hand loopback pages a ticket so the demo works with no configuration."""
        if not settings.dev_mode:
            return JSONResponse({"error": "not found"}, status_code=404)
        if refusal := dev_refusal(request.client, request.headers):
            return JSONResponse({"error": f"no dev ticket: {refusal}"}, status_code=403)
        try:
            body: Any = await request.json() if await request.body() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            app_id = body.get("app") or settings.apps[0]
            session, role = body.get("session"), body.get("role")
            if role not in (None, "driver", "viewer") or not isinstance(session, str | None):
                raise ValueError("session must be a string and role driver or viewer")
            ticket = tickets.mint(
                secret, sub=str(body.get("sub") or "dev"), apps=list(settings.apps), issuer="relay-dev-mode",
                lifetime=300, session=session, role=role,
            )
        except ValueError as exc:  # malformed JSON included
            return JSONResponse({"error": str(exc)}, status_code=400)
        scheme = "wss" if request.url.scheme == "https" else "ws"
        return JSONResponse({
            "url": f"{scheme}://{request.url.netloc}/{app_id}/realtime",
            "ticket": ticket, "app": app_id, "apps": list(settings.apps), "expires_in": 300,
        })

    async def demo(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html")

    routes = [
        Route("/", demo),
        Route("/widget", lambda request: FileResponse(STATIC_DIR / "widget.html")),
        Route("/favicon.ico", lambda request: FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon")),
        Route("/health", health),
        Route("/ready", ready),
        *([Route("/metrics", metrics_endpoint)] if settings.metrics_port is None else []),
        Route("/dev/ticket", dev_ticket, methods=["POST"]),
        Route("/apps", apps),
        # Pages the relay accepts WebSockets from may import the widget and client cross-origin (the
        # embedding in README); no one else needs to: Odoo bundles its own copy of the client.
        Mount("/static", CORSMiddleware(StaticFiles(directory=STATIC_DIR),
                                        allow_origins=list(settings.allowed_origins)), name="static"),
        WebSocketRoute("/{owner}/{alias}/realtime", realtime),
        WebSocketRoute("/{owner}/{alias}/{path:path}/realtime", realtime),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.limits = limits
    app.state.sessions = hub
    return app
