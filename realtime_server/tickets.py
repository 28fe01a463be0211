"""Short-lived HS256 tickets that let a browser open one realtime app through the relay.

Odoo (or any backend holding RELAY_SHARED_SECRET) mints them; the relay only verifies. They are
stateless, so any replica accepts them. Claims: iss, sub, aud, apps, exp, iat, jti and the
optional live-session pair `session` + `role`; the header's optional `kid` names the secret
(`issuers.Keyring` picks it, so secrets rotate without downtime).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from .issuers import Issuer, Keyring
from .protocol import TicketExpired, Unauthorized

AUDIENCE = "fal-realtime"
MAX_LIFETIME = 600
Role = Literal["driver", "viewer"]


@dataclass(frozen=True)
class Ticket:
    """The verified claims of a ticket, or of a relay API key (which has no expiry)."""

    sub: str
    apps: tuple[str, ...]
    issuer: str
    expires_at: float | None
    session: str | None = None
    role: Role | None = None
    tenant: Issuer | None = None  # the configuration of the issuer whose secret verified it

    def allows(self, app: str) -> bool:
        return app in self.apps or "*" in self.apps


def mint(
    secret: str,
    *,
    sub: str,
    apps: list[str] | tuple[str, ...],
    issuer: str,
    lifetime: int = 300,
    session: str | None = None,
    role: Role | None = None,
    now: float | None = None,
    kid: str | None = None,
) -> str:
    """Sign a ticket for `sub` to open `apps` for `lifetime` seconds (at most ten minutes)."""
    if not 0 < lifetime <= MAX_LIFETIME:
        raise ValueError(f"lifetime must be between 1 and {MAX_LIFETIME} seconds")
    if role is not None and session is None:
        raise ValueError("a role needs a session")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "aud": AUDIENCE,
        "apps": list(apps),
        "iat": issued,
        "exp": issued + lifetime,
        "jti": secrets.token_urlsafe(12),
    }
    if session is not None:
        claims["session"] = session
        claims["role"] = role or "driver"
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid} if kid is not None else None)


# Any real clock reading is far below this; NaN, infinities and 400-digit integers are not times.
_LATEST_TIME = 2.0**40


def _timestamp(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) < _LATEST_TIME:
        raise Unauthorized("ticket's exp and iat must be numbers")
    return float(value)


def _choose_secret(keys: Keyring, token: str) -> tuple[Issuer, str]:
    """The one secret the ticket's unverified `iss` and `kid` point at (the signature then proves both)."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        iss = jwt.decode(token, options={"verify_signature": False}).get("iss", "")
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"ticket is malformed ({type(exc).__name__})") from None
    if not isinstance(kid, str | None) or not isinstance(iss, str):
        raise Unauthorized("ticket's kid and iss must be strings")
    return keys.secret_for(iss, kid)


def verify(keys: Keyring | str, token: str, *, leeway: float = 5.0, now: float | None = None) -> Ticket:
    """Check signature, audience, expiry and shape; raise `Unauthorized` or `TicketExpired` saying why.

    `keys` is the relay's keyring, or one secret (for tickets without kid from any issuer).
    """
    current = now if now is not None else time.time()
    if isinstance(keys, str):
        keys = Keyring((), Issuer(name="", secrets=((None, keys),)))
    tenant, secret = _choose_secret(keys, token)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            leeway=leeway,
            options={"require": ["exp", "iat", "sub", "aud", "jti"], "verify_iat": False, "verify_exp": False},
        )
    except jwt.InvalidAudienceError:
        raise Unauthorized(f"ticket is not for this service (audience must be '{AUDIENCE}')") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("ticket signature does not match this relay's secret") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"ticket lacks the '{exc.claim}' claim") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthorized("ticket must be signed with HS256") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"ticket is malformed ({type(exc).__name__})") from None
    exp, iat = _timestamp(claims["exp"]), _timestamp(claims["iat"])
    if exp + leeway < current:
        raise TicketExpired("ticket has expired; fetch a new one")
    if iat - leeway > current:
        raise Unauthorized("ticket is not valid yet (iat in the future)")
    if exp - current > MAX_LIFETIME + leeway:
        raise Unauthorized(f"ticket lives longer than {MAX_LIFETIME} seconds")
    apps = claims.get("apps")
    if not isinstance(apps, list) or not all(isinstance(a, str) for a in apps):
        raise Unauthorized("ticket's 'apps' claim must be a list of app ids")
    session, role = claims.get("session"), claims.get("role")
    if session is not None and (not isinstance(session, str) or role not in ("driver", "viewer")):
        raise Unauthorized("ticket's live session needs a string 'session' and a role of driver or viewer")
    return Ticket(
        sub=str(claims["sub"]),
        apps=tuple(apps),
        issuer=str(claims.get("iss", "")),
        expires_at=exp,
        session=session,
        role=role if session is not None else None,
        tenant=tenant,
    )
