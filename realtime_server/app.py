"""The relay's ASGI app: fal's realtime paths, health and metrics, the demo page.

`create_app(settings)` builds everything once; the WebSocket endpoint authenticates the
handshake, admits the connection against the limits, runs a `Relay`, and turns any
`RelayError` into one x-fal-error frame and a close.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import mimetypes
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from . import protocol, tickets
from .connection import SplicedConnection
from .handshake import (
    authenticate,
    authenticate_request,
    check_app,
    check_origin,
    check_session_param,
    dev_refusal,
    is_local_peer,
    keyring,
    parse_target,
)
from .limits import ConnectionLimits
from .log_redaction import redact_handshake_logs
from .metrics import Metrics
from .protocol import RelayError
from .relay import Relay
from .serving import SPLICE_EXTENSION, serve_beside
from .sessions import SessionHub
from .settings import Settings

logger = logging.getLogger(__name__)
mimetypes.add_type("text/javascript", ".mjs")  # module scripts need a JavaScript type; not every OS maps .mjs

# In a checkout realtime_server/static links to ../static; installed, it is the files (see pyproject.toml).
STATIC_DIR = (Path(__file__).resolve().parent / "static").resolve()


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
    redact_handshake_logs()
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
