"""How many connections may be open: in total, per issuer (tenant) and per user of an issuer.

A user is (issuer, sub): two Odoo databases both have a user 7, and neither's connections count
against the other's.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import protocol
from .settings import Settings
from .tickets import Ticket


@dataclass
class ConnectionLimits:
    """Counts open connections; `admit` raises `TooManyConnections` when one count is full."""

    settings: Settings
    per_user: dict[tuple[str, str], int] = field(default_factory=dict)
    per_issuer: dict[str, int] = field(default_factory=dict)
    total: int = 0

    @contextmanager
    def admit(self, ticket: Ticket) -> Iterator[None]:
        settings, tenant = self.settings, ticket.tenant
        user, issuer = (ticket.issuer, ticket.sub), ticket.issuer
        per_user = (tenant and tenant.max_connections_per_user) or settings.max_connections_per_user
        per_issuer = tenant.max_connections if tenant else None
        if self.total >= settings.max_connections:
            raise protocol.TooManyConnections(
                f"relay is at its limit of {settings.max_connections} connections; retry shortly")
        if per_issuer is not None and self.per_issuer.get(issuer, 0) >= per_issuer:
            raise protocol.TooManyConnections(
                f"your organisation has its limit of {per_issuer} open connections; retry shortly")
        if self.per_user.get(user, 0) >= per_user:
            raise protocol.TooManyConnections(f"you already have {per_user} open connections; close one first")
        self.total += 1
        self.per_user[user] = self.per_user.get(user, 0) + 1
        self.per_issuer[issuer] = self.per_issuer.get(issuer, 0) + 1
        try:
            yield
        finally:
            self.total -= 1
            _leave(self.per_user, user)
            _leave(self.per_issuer, issuer)


def _leave(counts: dict[Any, int], key: Hashable) -> None:
    counts[key] -= 1
    if not counts[key]:
        del counts[key]
