"""Serve local fal apps on loopback under fal's own paths (`/{owner}/{alias}/realtime`).

fal's SDK builds each app's ASGI (FastAPI) app in-process; this mounts them by app id the way
fal's gateway routes them, so the relay reaches them exactly as it reaches fal's cloud.
`fal run --local` would bind 0.0.0.0 and a fixed metrics port, which suits neither tests nor a
default run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import fal
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp


def build_asgi(app_class: type[fal.App]) -> ASGIApp:
    # fal 1.83 exposes no public in-process builder; `_build_app` is what its own `serve()` calls.
    return app_class(_allow_init=True)._build_app()


def create_gateway(apps: Mapping[str, ASGIApp]) -> Starlette:
    """A Starlette app mounting each fal ASGI app at `/{app_id}` and running their lifespans."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for asgi in apps.values():
                await stack.enter_async_context(asgi.router.lifespan_context(asgi))  # type: ignore[attr-defined]
            yield

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "apps": sorted(apps)})

    routes = [Route("/health", health)] + [Mount(f"/{app_id}", app=asgi) for app_id, asgi in apps.items()]
    return Starlette(routes=routes, lifespan=lifespan)
