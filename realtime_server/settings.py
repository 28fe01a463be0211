"""Every knob of the relay, read from the environment once.

`Settings.from_environ()` is the only place that reads the relay's own variables; the result is
passed down explicitly, so tests build their own `Settings` without touching the process
environment. OpenSSL's standard `SSL_CERT_FILE` / `SSL_CERT_DIR` (which CAs a TLS upstream is
checked against) are read where the TLS context is made, as `ssl.create_default_context` does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .issuers import Issuer, parse_issuers, parse_kid_secrets

FAL_CLOUD_URL = "wss://fal.run"
DEFAULT_FAL_APPS = ("fal-ai/fast-lcm-diffusion", "fal-ai/fast-turbo-diffusion", "fal-ai/lcm-sd15-i2i")
LOCAL_APPS = ("local/preview",)


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError("expected true/1/false/0")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _positive(cast: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = cast(value)
        if number <= 0:
            raise ValueError("must be greater than zero")
        return number

    return parse


@dataclass(frozen=True)
class Settings:
    """The relay's configuration; field metadata names the environment variable of each field."""

    # Upstream
    fal_key: str | None = field(default=None, repr=False, metadata={"env": "FAL_KEY", "cast": str})
    upstream_url: str | None = field(default=None, metadata={"env": "RELAY_UPSTREAM_URL", "cast": str})
    upstream_open_timeout: float = field(default=10.0, metadata={"env": "RELAY_UPSTREAM_OPEN_TIMEOUT"})
    # Auth
    shared_secret: str | None = field(default=None, repr=False, metadata={"env": "RELAY_SHARED_SECRET", "cast": str})
    dev_mode_with_fal_key: bool = field(default=False, metadata={"env": "RELAY_DEV_MODE"})
    api_keys: tuple[str, ...] = field(default=(), repr=False, metadata={"env": "RELAY_API_KEYS", "cast": _csv})
    allowed_apps: tuple[str, ...] | None = field(default=None, metadata={"env": "RELAY_ALLOWED_APPS", "cast": _csv})
    allowed_origins: tuple[str, ...] = field(default=(), metadata={"env": "RELAY_ALLOWED_ORIGINS", "cast": _csv})
    ticket_leeway: float = field(default=5.0, metadata={"env": "RELAY_TICKET_LEEWAY"})
    # Secret rotation and tenants (issuers.py): secrets chosen by the ticket's kid, per-issuer configuration
    shared_secrets: tuple[tuple[str | None, str], ...] = field(
        default=(), repr=False, metadata={"env": "RELAY_SHARED_SECRETS", "cast": parse_kid_secrets})
    issuers: tuple[Issuer, ...] = field(
        default=(), repr=False, metadata={"env": "RELAY_ISSUERS", "cast": parse_issuers})
    # Limits
    max_frame_bytes: int = field(default=1_048_576, metadata={"env": "RELAY_MAX_FRAME_BYTES"})
    max_inputs_per_second: float = field(default=60.0, metadata={"env": "RELAY_MAX_INPUTS_PER_SECOND"})
    max_connections: int = field(default=1000, metadata={"env": "RELAY_MAX_CONNECTIONS"})
    max_connections_per_user: int = field(default=8, metadata={"env": "RELAY_MAX_CONNECTIONS_PER_USER"})
    idle_timeout: float = field(default=120.0, metadata={"env": "RELAY_IDLE_TIMEOUT"})
    send_timeout: float = field(default=10.0, metadata={"env": "RELAY_SEND_TIMEOUT"})
    drain_seconds: float = field(default=5.0, metadata={"env": "RELAY_DRAIN_SECONDS"})
    max_session_seconds: float = field(default=3600.0, metadata={"env": "RELAY_MAX_SESSION_SECONDS"})
    max_viewers_per_session: int = field(default=100, metadata={"env": "RELAY_MAX_VIEWERS_PER_SESSION"})
    max_sessions_per_user: int = field(default=4, metadata={"env": "RELAY_MAX_SESSIONS_PER_USER"})
    # Serving (used by the console command)
    host: str = field(default="127.0.0.1", metadata={"env": "RELAY_HOST", "cast": str})
    port: int = field(default=8000, metadata={"env": "PORT"})
    ssl_certfile: str | None = field(default=None, metadata={"env": "RELAY_SSL_CERTFILE", "cast": str})
    ssl_keyfile: str | None = field(default=None, metadata={"env": "RELAY_SSL_KEYFILE", "cast": str})
    log_level: str = field(default="info", metadata={"env": "RELAY_LOG_LEVEL", "cast": str})
    # Metrics: who may read /metrics (a bearer token), and where (a listener of its own)
    metrics_token: str | None = field(default=None, repr=False, metadata={"env": "RELAY_METRICS_TOKEN", "cast": str})
    metrics_host: str = field(default="127.0.0.1", metadata={"env": "RELAY_METRICS_HOST", "cast": str})
    metrics_port: int | None = field(default=None, metadata={"env": "RELAY_METRICS_PORT", "cast": _positive(int)})

    _CASTS = {int: _positive(int), float: _positive(float), bool: _bool}

    def __post_init__(self) -> None:
        # Dev mode hands a ticket to anything that looks like loopback; with fal's key behind it, one
        # forgotten variable and a tunnel would let anyone stream on the operator's account.
        if self.fal_key and self.dev_mode and not self.dev_mode_with_fal_key:
            raise ValueError(
                "FAL_KEY is set but RELAY_SHARED_SECRET is not: set RELAY_SHARED_SECRET to the secret your Odoo "
                "signs tickets with, or set RELAY_DEV_MODE=1 to hand out dev tickets for your fal account on purpose"
            )
        if self.dev_mode_with_fal_key and not self.dev_mode:
            raise ValueError("RELAY_DEV_MODE=1 is set with credentials (RELAY_SHARED_SECRET, RELAY_SHARED_SECRETS, "
                             "RELAY_ISSUERS or RELAY_API_KEYS): dev mode means none of them")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Build settings from `environ`; a bad value raises `ValueError` naming the variable and value."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            cast = f.metadata.get("cast") or cls._CASTS[type(f.default)]
            try:
                values[f.name] = cast(raw)
            except ValueError as exc:
                shown = f"value '{raw}'" if f.repr else "a bad value"  # secrets are never echoed
                raise ValueError(f"Config '{name}' has {shown}: {exc}") from None
        return cls(**values)

    @property
    def dev_mode(self) -> bool:
        """Without any credential (a secret to verify tickets, or relay API keys) the relay mints its own
        tickets and admits loopback clients only. Keys alone are a relay for scripts and fal's clients."""
        return not (self.shared_secret or self.shared_secrets or self.issuers or self.api_keys)

    @property
    def uses_fal_cloud(self) -> bool:
        return bool(self.fal_key)

    @property
    def apps(self) -> tuple[str, ...]:
        """The app ids this relay opens: the explicit allowlist, else what its upstream serves."""
        if self.allowed_apps is not None:
            return self.allowed_apps
        return DEFAULT_FAL_APPS if self.uses_fal_cloud else LOCAL_APPS

    @property
    def needs_local_app(self) -> bool:
        return not self.uses_fal_cloud and self.upstream_url is None

    def with_upstream(self, url: str) -> Settings:
        return dataclasses.replace(self, upstream_url=url)

    def resolved_upstream_url(self) -> str:
        """Base URL of the upstream: explicit, fal's cloud with a key, or the embedded app (set at start)."""
        if self.upstream_url:
            return self.upstream_url.rstrip("/")
        if self.uses_fal_cloud:
            return FAL_CLOUD_URL
        raise RuntimeError("no upstream: set FAL_KEY or RELAY_UPSTREAM_URL, or start the embedded app")
