"""Who may mint tickets for this relay, with which secrets, for which apps and within which limits.

A ticket names its issuer (`iss`, one Odoo database) and may name the secret it was signed with
(the JWT header's `kid`). The relay picks exactly one secret from those two and verifies with
it: a ticket is never tried against secrets it did not ask for, and one issuer's secrets never
verify another issuer's tickets. Several secrets per issuer let an operator rotate one without
downtime (README, "Deployment").

`RELAY_ISSUERS` lists the issuers (a JSON object, or `@path` to a JSON file):

    {"https://odoo-a.example": {"secrets": {"2026-12": "...", "2026-06": "..."},
                                "apps": ["fal-ai/fast-lcm-diffusion"],
                                "max_connections": 200, "max_connections_per_user": 4}}

`secret` (one secret, for tickets without `kid`) and `secrets` (kid -> secret) may both be
given; `apps` and the limits are optional. Issuers not listed fall back to the relay-wide
`RELAY_SHARED_SECRET` / `RELAY_SHARED_SECRETS`, if set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .protocol import Unauthorized

MIN_SECRET_LENGTH = 32  # HS256 keys shorter than the hash are weak (RFC 7518, section 3.2)
_ISSUER_KEYS = {"secret", "secrets", "apps", "max_connections", "max_connections_per_user"}


@dataclass(frozen=True)
class Issuer:
    """One backend that mints tickets; `name` "" stands for the relay-wide secrets (any `iss`)."""

    name: str
    secrets: tuple[tuple[str | None, str], ...]  # (kid, secret); kid None: tickets without a kid
    apps: tuple[str, ...] | None = None  # None: every app the relay serves
    max_connections: int | None = None  # None: only the relay's own total applies
    max_connections_per_user: int | None = None  # None: RELAY_MAX_CONNECTIONS_PER_USER

    def __repr__(self) -> str:  # never print a secret
        return f"Issuer({self.name!r}, kids={[kid for kid, _ in self.secrets]!r}, apps={self.apps!r})"

    def allows(self, app: str) -> bool:
        """Whether this issuer's tickets may open `app` (the relay's own allowlist still applies)."""
        return self.apps is None or app in self.apps

    def secret(self, kid: str | None) -> str | None:
        for known, secret in self.secrets:
            if known == kid:
                return secret
        return None


def parse_kid_secrets(value: str) -> tuple[tuple[str | None, str], ...]:
    """`RELAY_SHARED_SECRETS`: comma-separated `kid=secret` pairs, each kid once (a kid picks exactly one
    secret), each secret as long as `RELAY_ISSUERS` and Odoo require."""
    pairs: list[tuple[str | None, str]] = []
    for item in value.split(","):
        kid, sep, secret = (part.strip() for part in item.strip().partition("="))
        if not item.strip():
            continue
        if not sep or not kid or not secret:
            raise ValueError("expected comma-separated kid=secret pairs")
        if any(kid == known for known, _ in pairs):
            raise ValueError(f"kid '{kid}' is given twice; each kid names one secret")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the secret of kid '{kid}' is shorter than {MIN_SECRET_LENGTH} characters")
        pairs.append((kid, secret))
    return tuple(pairs)


def _positive_int(issuer: str, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"issuer '{issuer}': {key} must be a whole number above zero")
    return value


def _issuer(name: str, entry: Any) -> Issuer:
    if not name or not isinstance(entry, dict):
        raise ValueError("each issuer must be a non-empty iss mapped to an object")
    unknown = set(entry) - _ISSUER_KEYS
    if unknown:
        raise ValueError(f"issuer '{name}': unknown key(s) {', '.join(sorted(unknown))}")
    secrets: list[tuple[str | None, str]] = []
    if "secret" in entry:
        secrets.append((None, entry["secret"]))
    kid_secrets = entry.get("secrets", {})
    if not isinstance(kid_secrets, dict):
        raise ValueError(f"issuer '{name}': secrets must map key ids to secrets")
    secrets.extend(kid_secrets.items())
    if not secrets:
        raise ValueError(f"issuer '{name}' has no secret")
    for kid, secret in secrets:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH or kid == "":
            raise ValueError(f"issuer '{name}': each secret must be a string of at least {MIN_SECRET_LENGTH} "
                             "characters under a non-empty key id")
    apps = entry.get("apps")
    if apps is not None and (not isinstance(apps, list) or not all(isinstance(a, str) and a for a in apps)):
        raise ValueError(f"issuer '{name}': apps must be a list of app ids")
    return Issuer(
        name=name,
        secrets=tuple(secrets),
        apps=tuple(apps) if apps is not None else None,
        max_connections=_positive_int(name, "max_connections", entry.get("max_connections")),
        max_connections_per_user=_positive_int(name, "max_connections_per_user",
                                               entry.get("max_connections_per_user")),
    )


def parse_issuers(value: str) -> tuple[Issuer, ...]:
    """`RELAY_ISSUERS`: a JSON object, or `@/path/to/file.json` holding one."""
    text = value.strip()
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read {text[1:]}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("not valid JSON (give a JSON object, or @path to a JSON file)") from None
    if not isinstance(data, dict):
        raise ValueError("must be a JSON object mapping each issuer (iss) to its settings")
    return tuple(_issuer(name, entry) for name, entry in data.items())


class Keyring:
    """Picks the one secret that may verify a ticket, from its `iss` and `kid`."""

    def __init__(self, issuers: Iterable[Issuer], shared: Issuer | None) -> None:
        self.issuers = {issuer.name: issuer for issuer in issuers}
        self.shared = shared  # the relay-wide secrets, for issuers not listed

    def issuer(self, iss: str) -> Issuer:
        listed = self.issuers.get(iss)
        if listed is not None:
            return listed
        if self.shared is not None:
            return self.shared
        raise Unauthorized("ticket's issuer is not known to this relay")

    def secret_for(self, iss: str, kid: str | None) -> tuple[Issuer, str]:
        issuer = self.issuer(iss)
        secret = issuer.secret(kid)
        if secret is None:
            if kid is None:
                raise Unauthorized("ticket has no key id (kid), and its issuer's secrets all have one")
            raise Unauthorized("ticket's key id (kid) is not one this relay knows for its issuer")
        return issuer, secret
