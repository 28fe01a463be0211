"""Open the upstream realtime connection: fal's cloud or the embedded app, by the same code.

Only the base URL and the credentials differ. The URL is built the way fal-client builds it
(`{base}/{app}/{path}?max_buffering=N`), and fal's key travels as `Authorization: Key ...`,
which fal accepts in place of a short-lived JWT; it never leaves the relay.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection

from .protocol import UpstreamUnavailable
from .settings import Settings

# Inputs are small; outputs are images. The cap keeps a broken upstream from exhausting memory.
MAX_UPSTREAM_FRAME = 32 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """What a client asked to open: `owner/alias`, the endpoint path, and fal's buffering hint."""

    app: str
    path: str = "realtime"
    max_buffering: int | None = None


def upstream_url(settings: Settings, target: Target) -> str:
    url = f"{settings.resolved_upstream_url()}/{target.app}/{target.path}"
    if target.max_buffering is not None:
        url += "?" + urlencode({"max_buffering": target.max_buffering})
    return url


async def connect(settings: Settings, target: Target) -> ClientConnection:
    """Open the upstream WebSocket or raise `UpstreamUnavailable` with a reason a person can act on."""
    headers = {"Authorization": f"Key {settings.fal_key}"} if settings.fal_key else None
    try:
        return await websockets.connect(
            upstream_url(settings, target),
            additional_headers=headers,
            open_timeout=settings.upstream_open_timeout,
            max_size=MAX_UPSTREAM_FRAME,
            compression=None,  # images are already compressed; deflate would only add latency
            max_queue=4,
            user_agent_header="fal-realtime-relay",
        )
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        raise UpstreamUnavailable(f"upstream refused {target.app} with HTTP {status}") from None
    except TimeoutError:
        raise UpstreamUnavailable(f"upstream did not answer within {settings.upstream_open_timeout:g} s") from None
    except (OSError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
        raise UpstreamUnavailable(f"cannot reach upstream for {target.app} ({type(exc).__name__})") from None
