"""fal-realtime relay: a low-latency WebSocket relay for fal.ai realtime apps."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
