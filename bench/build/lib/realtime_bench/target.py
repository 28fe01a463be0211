"""Any target: a deployed relay, or fal itself, measured as the people who run it see it.

`--target URL` (and `--compare URL`) name a WebSocket base, `ws://` or `wss://`, under which an app
answers at `/{app}/realtime`, as fal's gateway and the relay both serve it. Credentials, one of:
`--key` (default `FAL_KEY`) sent as `Authorization: Key ...`, which fal and the relay's API keys
accept; `--ticket`, sent as `?fal_jwt_token=`; or `--ticket-url`, an endpoint POSTed for a fresh
ticket before every point (the relay's `/dev/ticket`, an Odoo ticket route, fal's token endpoint;
with `--key` the key goes along as `Authorization: Key`). Nothing here starts a server.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from .load import LoadSpec

TICKET_TIMEOUT = 15.0
LOOPBACK_NAMES = ("localhost",)


class TicketError(RuntimeError):
    """Raised when the ticket endpoint cannot be reached or answers with no ticket."""


@dataclass(frozen=True)
class Endpoint:
    """One measured target: where it is, which app, and how to get in."""

    name: str  # "target" or "compare", the route name in every table
    base_url: str
    app: str
    key: str | None = field(default=None, repr=False)
    ticket: str | None = field(default=None, repr=False)
    ticket_url: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"{self.name} URL must be ws:// or wss:// with a host, not {self.base_url!r}")
        if self.app.count("/") != 1 or not all(self.app.split("/")):
            raise ValueError(f"--app must be owner/alias (e.g. fal-ai/fast-lcm-diffusion), not {self.app!r}")
        if not (self.key or self.ticket or self.ticket_url):
            raise ValueError(f"no credentials for {self.name} {self.base_url}: pass --key (or set FAL_KEY), "
                             "--ticket or --ticket-url")

    @property
    def local(self) -> bool:
        """True when the target is on this machine (loopback): then nothing it sends costs anyone money."""
        host = urlsplit(self.base_url).hostname or ""
        if host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.app}/realtime"

    def fetch_ticket(self) -> str:
        """A fresh ticket from `ticket_url`: a JSON string, or an object with `ticket` or `token` (or in `result`)."""
        assert self.ticket_url is not None
        alias = self.app.split("/", 1)[1]
        # The relay and Odoo read `app`; fal's token endpoint reads `allowed_apps` and `token_expiration`.
        body = json.dumps({"app": self.app, "allowed_apps": [alias], "token_expiration": 300}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Key {self.key}"
        request = urllib.request.Request(self.ticket_url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TICKET_TIMEOUT) as response:
                answer: Any = json.loads(response.read().decode())
        except (OSError, ValueError) as exc:
            raise TicketError(f"{self.ticket_url} gave no ticket: {exc}") from exc
        if isinstance(answer, dict) and isinstance(answer.get("result"), dict | str):
            answer = answer["result"]
        if isinstance(answer, dict):
            answer = answer.get("ticket") or answer.get("token")
        if not isinstance(answer, str) or not answer:
            raise TicketError(f"{self.ticket_url} answered without a ticket (expected a string, or `ticket`/`token`)")
        return answer

    def credentials(self, spec: LoadSpec) -> LoadSpec:
        """`spec` aimed at this endpoint: a ticket in the URL (fetched now, when from `ticket_url`) or the key."""
        ticket = self.fetch_ticket() if self.ticket_url else self.ticket
        if ticket:
            return dataclasses.replace(spec, url=f"{self.url}?fal_jwt_token={quote(ticket, safe='')}", headers={})
        return dataclasses.replace(spec, url=self.url, headers={"Authorization": f"Key {self.key}"})

    def describe(self) -> str:
        how = "a ticket from " + self.ticket_url if self.ticket_url else "a ticket" if self.ticket else "a key"
        return f"{self.url} ({how})"
