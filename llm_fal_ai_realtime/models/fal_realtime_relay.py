"""The realtime relay as Odoo sees it: configuration, tickets, live sessions, probe.

Everything that knows the shared secret lives here, so the secret never leaves
this model: controllers and settings receive tickets and verdicts, never the key.
"""

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from odoo import _, api, models
from odoo.exceptions import UserError
from odoo.tools import LazyTranslate

_lt = LazyTranslate(__name__)
_logger = logging.getLogger(__name__)

try:
    import jwt
except ImportError:  # pragma: no cover - declared in external_dependencies
    jwt = None

try:
    import msgpack
    import websocket
except ImportError:  # pragma: no cover - declared in external_dependencies
    msgpack = websocket = None

PARAM_RELAY_URL = "llm_fal_ai_realtime.relay_url"
PARAM_SHARED_SECRET = "llm_fal_ai_realtime.shared_secret"
PARAM_ALLOWED_APPS = "llm_fal_ai_realtime.allowed_apps"
PARAM_TICKET_LIFETIME = "llm_fal_ai_realtime.ticket_lifetime"
# Secret rotation: the current secret's key id (the tickets' `kid` header), and of the secret it replaced
# only its key id and when its last tickets expire, so an administrator knows until when the relay
# must keep it (README, "Deployment"); the retired secret itself is not kept.
PARAM_SECRET_KID = "llm_fal_ai_realtime.secret_kid"
PARAM_PREVIOUS_SECRET_KID = "llm_fal_ai_realtime.previous_secret_kid"
PARAM_PREVIOUS_SECRET_UNTIL = "llm_fal_ai_realtime.previous_secret_until"
# The tickets' `iss`, set once (at install, or on the first ticket of an older database) from the base
# URL of the day. Not web.base.url itself: Odoo rewrites that when an administrator logs in through
# another address, which would move every ticket to another issuer on the relay.
PARAM_ISSUER = "llm_fal_ai_realtime.issuer"
KID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

LOCAL_PREVIEW_APP = "local/preview"
DEFAULT_ALLOWED_APPS = LOCAL_PREVIEW_APP
DEFAULT_TICKET_LIFETIME = 300
MIN_TICKET_LIFETIME = 30
MAX_TICKET_LIFETIME = 600
TICKET_AUDIENCE = "fal-realtime"
ROLE_DRIVER = "driver"
ROLE_VIEWER = "viewer"
PROBE_TIMEOUT = 10.0
APPS_TIMEOUT = 5.0
MIN_SECRET_LENGTH = 32  # HS256 keys shorter than the hash are weak (RFC 7518 section 3.2)

# owner/alias, optionally followed by a sub-path, exactly as fal names its apps.
APP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$")

# What a person should read for each relay error code (the relay's own reason follows); translated when shown.
ERROR_HINTS = {
    "UNAUTHORIZED": _lt("The relay refused the ticket: check that Odoo and the relay share the same secret."),
    "NOT_YET_VALID": _lt("The relay saw a ticket issued in its future: check the clocks of Odoo and the relay."),
    "TICKET_EXPIRED": _lt("The ticket expired before the relay saw it: check the clocks of Odoo and the relay."),
    "APP_NOT_ALLOWED": _lt("The relay does not allow this realtime app: add it to the relay's allowed apps."),
    "ORIGIN_NOT_ALLOWED": _lt("The relay refused this origin: add the Odoo URL to the relay's allowed origins."),
    "UPSTREAM_UNAVAILABLE": _lt("The relay is up but cannot reach the realtime model right now."),
    "UPSTREAM_ERROR": _lt("The realtime model reported an error."),
    "RATE_LIMITED": _lt("The relay is rate limiting this connection."),
    "TOO_MANY_CONNECTIONS": _lt("The relay has too many open connections right now."),
}


def parse_app_ids(env, text):
    """Split a comma/space/newline separated list of app ids, keeping order.

    :param env: environment (for the error's language)
    :param text: the raw setting value
    :return: list of app id strings
    :raise UserError: when one of them is not an ``owner/alias`` id
    """
    apps = []
    for app in re.split(r"[\s,]+", text or ""):
        if not app:
            continue
        if not APP_ID_RE.match(app):
            raise UserError(env._("'%(app)s' is not a realtime app id (expected owner/alias, e.g. %(example)s).",
                                  app=app, example="fal-ai/fast-lcm-diffusion"))
        if app not in apps:
            apps.append(app)
    return apps


# People type the WebSocket form for a WebSocket relay; it is stored in the http form (the relay
# also answers plain HTTP there: /apps, /health), and the WebSocket URL is derived from it.
_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def normalize_relay_url(env, url):
    """Check and normalise the relay public URL: ws(s):// or http(s)://, stored as http(s)://.

    :param env: environment (for the error's language)
    :param url: the URL as typed by an administrator
    :return: the http(s) URL without trailing slash
    :raise UserError: when it is not an absolute ws(s) or http(s) URL without query
    """
    url = (url or "").strip()
    parts = urlsplit(url)
    scheme = _HTTP_SCHEMES.get(parts.scheme.lower())
    if not scheme or not parts.hostname or parts.query or parts.fragment:
        raise UserError(env._("The relay URL must be an absolute wss://, ws://, https:// or http:// URL without "
                              "query, e.g. wss://relay.example.com (got '%s').", url))
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def app_label(env, app):
    """How an app id is shown to people: the embedded preview says what it is.

    :param env: environment (for the label's language)
    :param app: realtime app id
    :return: the label
    """
    if app == LOCAL_PREVIEW_APP:
        return env._("%s (the relay's embedded CPU preview, not a fal.ai model)", app)
    return app


def websocket_url(relay_url, app_id):
    """The relay's WebSocket URL for an app, without any ticket.

    :param relay_url: normalised http(s) relay URL
    :param app_id: realtime app id (owner/alias[/path])
    :return: ``ws(s)://host[/prefix]/{app_id}/realtime``
    """
    parts = urlsplit(relay_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, f"{parts.path.rstrip('/')}/{app_id}/realtime", "", ""))


class FalRealtimeRelay(models.AbstractModel):
    _name = "llm.fal.realtime.relay"
    _description = "fal.ai Realtime Relay"

    @api.model
    def _get_config(self, raise_if_incomplete=True):
        """Read the relay settings.

        :param raise_if_incomplete: raise a UserError when URL or secret is missing
        :return: dict with ``relay_url``, ``secret``, ``kid`` (or ``None``), ``allowed_apps``, ``lifetime``
        """
        params = self.env["ir.config_parameter"].sudo()
        url = params.get_param(PARAM_RELAY_URL) or ""
        secret = params.get_param(PARAM_SHARED_SECRET) or ""
        if raise_if_incomplete and not (url and secret):
            raise UserError(_("Live preview is not set up yet: an administrator must set the relay URL and "
                              "shared secret in Settings > General Settings > fal.ai Realtime."))
        try:
            lifetime = int(params.get_param(PARAM_TICKET_LIFETIME) or DEFAULT_TICKET_LIFETIME)
        except ValueError:
            lifetime = DEFAULT_TICKET_LIFETIME
        lifetime = min(max(lifetime, MIN_TICKET_LIFETIME), MAX_TICKET_LIFETIME)
        allowed = params.get_param(PARAM_ALLOWED_APPS, DEFAULT_ALLOWED_APPS)
        return {
            "relay_url": normalize_relay_url(self.env, url) if url else "",
            "secret": secret,
            "kid": params.get_param(PARAM_SECRET_KID) or None,
            "allowed_apps": parse_app_ids(self.env, allowed),
            "lifetime": lifetime,
        }

    @api.model
    def _session_id(self, thread):
        """A stable live-session id per thread that nobody can guess.

        HMAC of the database uuid and the thread id, keyed with the database's
        private secret, so the driver and viewers of one thread share it.

        :param thread: ``llm.thread`` record
        :return: 32 hex characters
        """
        params = self.env["ir.config_parameter"].sudo()
        key = (params.get_param("database.secret") or "").encode()
        msg = f"llm_fal_ai_realtime.session:{params.get_param('database.uuid')}:{thread.id}".encode()
        return hmac.new(key, msg, hashlib.sha256).hexdigest()[:32]

    @api.model
    def _issuer(self):
        """The tickets' ``iss``: the stored issuer, set from ``web.base.url`` the first time it is asked for.

        :return: the issuer string
        """
        params = self.env["ir.config_parameter"].sudo()
        issuer = params.get_param(PARAM_ISSUER)
        if not issuer:
            issuer = params.get_param("web.base.url") or params.get_param("database.uuid") or ""
            params.set_param(PARAM_ISSUER, issuer)
            _logger.info("realtime ticket issuer set once: %s", issuer)
        return issuer

    @api.model
    def _mint_ticket(self, apps, role, session, config=None):
        """Mint a short-lived HS256 ticket for the current user.

        :param apps: list of app ids the ticket may open
        :param role: ``driver`` or ``viewer`` (only meaningful with a session)
        :param session: live-session id (or ``None`` for a ticket outside any live session)
        :param config: result of :meth:`_get_config`, read when omitted
        :return: ``(ticket, expires_in)``
        """
        if jwt is None:
            raise UserError(_("The PyJWT Python package is not installed."))
        config = config or self._get_config()
        now = int(time.time())
        claims = {
            "iss": self._issuer(),
            "sub": str(self.env.uid),
            "aud": TICKET_AUDIENCE,
            "apps": list(apps),
            "iat": now,
            "exp": now + config["lifetime"],
            "jti": secrets.token_urlsafe(16),
        }
        if session:
            claims["session"] = session
            claims["role"] = role
        headers = {"kid": config["kid"]} if config.get("kid") else None
        return jwt.encode(claims, config["secret"], algorithm="HS256", headers=headers), config["lifetime"]

    @api.model
    def _rotate_secret(self, secret, kid):
        """Start signing tickets with a new secret; keep the one it replaces beside it for the overlap.

        Tickets minted with the old secret stay valid until they expire (at most ``MAX_TICKET_LIFETIME``
        seconds from now), so the relay must accept the old secret until then; after that it may drop it.

        :param secret: the new secret (at least ``MIN_SECRET_LENGTH`` characters)
        :param kid: its key id, as the relay's ``RELAY_SHARED_SECRETS`` names it, or empty for none
        :raise UserError: a secret too short or a key id the relay cannot name
        """
        if len(secret) < MIN_SECRET_LENGTH:
            raise UserError(_("The shared secret must be at least %s characters long (HS256 wants 32 bytes).",
                              MIN_SECRET_LENGTH))
        if kid and not KID_RE.match(kid):
            raise UserError(_("The key id must be 1-64 letters, digits, '.', '_', ':' or '-' (got '%s').", kid))
        params = self.env["ir.config_parameter"].sudo()
        old_secret, old_kid = params.get_param(PARAM_SHARED_SECRET), params.get_param(PARAM_SECRET_KID) or ""
        if old_secret and old_secret != secret:
            until = datetime.now(timezone.utc) + timedelta(seconds=MAX_TICKET_LIFETIME)
            params.set_param(PARAM_PREVIOUS_SECRET_KID, old_kid)
            params.set_param(PARAM_PREVIOUS_SECRET_UNTIL, until.strftime("%Y-%m-%d %H:%M:%S UTC"))
        params.set_param(PARAM_SHARED_SECRET, secret)
        params.set_param(PARAM_SECRET_KID, kid or False)
        _logger.info("realtime relay shared secret changed by user %s (kid %s; previous kid %s kept for the overlap)",
                     self.env.uid, kid or "-", old_kid or "-")

    @api.model
    def _previous_secret_info(self):
        """What an administrator must know about the secret the current one replaced, or ``""``.

        :return: a sentence naming its key id and until when tickets signed with it live
        """
        params = self.env["ir.config_parameter"].sudo()
        until = params.get_param(PARAM_PREVIOUS_SECRET_UNTIL)
        if not until:
            return ""
        return _("Tickets signed with the previous secret (key id %(kid)s) live until %(until)s: keep it on "
                 "the relay until then, then remove it.",
                 kid=params.get_param(PARAM_PREVIOUS_SECRET_KID) or _("none"), until=until)

    @api.model
    def _issue_session(self, thread_id, model_id):
        """Everything a browser needs to open the live preview of a thread.

        :param thread_id: id of the ``llm.thread`` (the current user must be able to read it)
        :param model_id: id of the realtime ``llm.model`` to open
        :return: dict ``{url, ticket, app, session, role, expires_in}``; ``url`` carries the session
            (for load-balancer affinity) but never the ticket
        :raise AccessError: the user cannot read the thread, or the model's provider is in no active company
        :raise UserError: the model is not realtime or not allowed, or the relay is not configured
        """
        if not isinstance(thread_id, int) or isinstance(thread_id, bool) or thread_id <= 0:
            raise UserError(_("thread_id must be a positive integer."))
        thread = self.env["llm.thread"].browse(thread_id)
        if not thread.exists():
            raise UserError(_("This conversation does not exist (any more)."))
        thread.check_access("read")  # raises AccessError for users who cannot read it
        if not isinstance(model_id, int) or isinstance(model_id, bool) or model_id <= 0:
            raise UserError(_("model_id must be a positive integer."))
        model = self.env["llm.model"].browse(model_id)
        if not model.exists():
            raise UserError(_("This model does not exist (any more)."))
        model.check_access("read")
        model._check_fal_realtime_company()
        if not model.is_realtime:
            raise UserError(_("Model %s has no realtime endpoint.", model.name))
        config = self._get_config()
        app = model.realtime_app_id
        if app not in config["allowed_apps"]:
            raise UserError(_("The realtime app %s is not allowed here: an administrator can allow it in Settings.",
                              app))
        role = ROLE_DRIVER if thread._fal_realtime_is_driver() else ROLE_VIEWER  # the pen holder drives
        session = self._session_id(thread)
        ticket, expires_in = self._mint_ticket([app], role, session, config=config)
        _logger.info("realtime ticket issued: user=%s thread=%s app=%s role=%s", self.env.uid, thread.id, app, role)
        return {
            # ?session= lets a load balancer route every connection of the session to one replica.
            "url": f"{websocket_url(config['relay_url'], app)}?session={session}",
            "ticket": ticket,
            "app": app,
            "session": session,
            "role": role,
            "expires_in": expires_in,
        }

    @api.model
    def _relay_apps(self, relay_url, secret, timeout=APPS_TIMEOUT, kid=None):
        """Ask the relay which apps it opens (``GET /apps``, with a fresh ticket as the credential).

        :param relay_url: http(s) relay URL
        :param secret: shared secret to sign the ticket with
        :param timeout: seconds to wait for the answer
        :param kid: the secret's key id, put in the ticket's header (``None``: no kid)
        :return: dict ``{ok, apps, code, message}``; ``apps`` is the relay's list when ``ok``
        """
        relay_url = normalize_relay_url(self.env, relay_url)
        ticket, _expires = self._mint_ticket([], ROLE_DRIVER, None, config={"secret": secret, "lifetime": 60,
                                                                                     "kid": kid})
        try:
            response = requests.get(f"{relay_url}/apps", headers={"Authorization": f"Bearer {ticket}"},
                                    timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            _logger.info("realtime relay app list failed: %s", type(exc).__name__)
            if isinstance(exc, requests.Timeout):
                error = _("no answer within %s seconds", timeout)
            elif isinstance(exc, requests.ConnectionError):
                error = _("the connection was refused or the host is unknown")
            else:
                error = type(exc).__name__
            return {"ok": False, "apps": [], "code": "UNREACHABLE",
                    "message": _("Cannot reach the relay at %(url)s: %(error)s", url=relay_url, error=error)}
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict) and isinstance(body.get("apps"), list):
            return {"ok": True, "apps": [str(app) for app in body["apps"]], "code": "", "message": ""}
        if isinstance(body, dict) and body.get("error"):
            code, reason = str(body["error"]), str(body.get("reason") or "")
            _logger.info("realtime relay app list refused: %s", code)
            return {"ok": False, "apps": [], "code": code, "message": _(
                "The relay said %(code)s: %(reason)s %(hint)s", code=code, reason=reason,
                hint=self._error_hint(code, reason)).strip()}
        return {"ok": False, "apps": [], "code": f"HTTP_{response.status_code}", "message": _(
            "The relay did not list its apps (HTTP %s at /apps): is this URL a fal-realtime relay, and a recent one?",
            response.status_code)}

    @api.model
    def _check(self, relay_url, secret, allowed_apps, kid=None):
        """Everything Test connection reports: the relay's apps against Odoo's, then one real frame.

        :param relay_url: http(s) or ws(s) relay URL (normalised here)
        :param secret: shared secret
        :param allowed_apps: app ids allowed in Odoo
        :param kid: the secret's key id (``None``: tickets carry none)
        :return: dict ``{ok, code, message, app, relay_apps, refused, not_allowed}``: ``refused`` are apps
            allowed in Odoo that the relay will refuse, ``not_allowed`` apps the relay serves that Odoo does not allow
        """
        listing = self._relay_apps(relay_url, secret, kid=kid)
        verdict = {"app": "", "relay_apps": listing["apps"], "refused": [], "not_allowed": []}
        if not listing["ok"]:
            return {**verdict, "ok": False, "code": listing["code"], "message": listing["message"]}
        served = listing["apps"]
        verdict["refused"] = [app for app in allowed_apps if app not in served]
        verdict["not_allowed"] = [app for app in served if app not in allowed_apps]
        both = [app for app in allowed_apps if app in served]
        if not both:
            return {**verdict, "ok": False, "code": "APP_NOT_ALLOWED", "message": _(
                "None of the apps allowed here is served by this relay: allow one of the relay's apps below, "
                "or add yours to the relay's RELAY_ALLOWED_APPS.")}
        app = LOCAL_PREVIEW_APP if LOCAL_PREVIEW_APP in both else both[0]
        probe = self._probe(relay_url, secret, app, kid=kid)
        return {**verdict, "ok": probe["ok"], "code": probe["code"], "message": probe["message"], "app": app}

    @api.model
    def _probe(self, relay_url, secret, app, timeout=PROBE_TIMEOUT, kid=None):
        """Open a real WebSocket to the relay with a fresh ticket and render one frame.

        :param relay_url: http(s) relay URL to test
        :param secret: shared secret to sign the ticket with
        :param app: app id to open
        :param timeout: seconds to wait for the handshake and the first frame
        :param kid: the secret's key id, put in the ticket's header (``None``: no kid)
        :return: dict ``{ok, code, message, latency_ms}``; ``code`` is the relay's error code on failure
        """
        if websocket is None or msgpack is None:
            raise UserError(_("The websocket-client and msgpack Python packages are required."))
        relay_url = normalize_relay_url(self.env, relay_url)
        config = {"secret": secret, "lifetime": 60, "kid": kid}
        ticket, _expires = self._mint_ticket([app], ROLE_DRIVER, None, config=config)
        url = f"{websocket_url(relay_url, app)}?fal_jwt_token={quote(ticket)}"
        started = time.monotonic()
        conn = None
        verdict = None
        try:
            # suppress_origin: this is a server-to-server check, not a browser handshake.
            conn = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
            frame = {"prompt": "Odoo connection test", "seed": 42, "strength": 0.5,
                     "num_inference_steps": 2, "width": 256, "height": 256}
            conn.send_binary(msgpack.packb(frame, use_bin_type=True))
            deadline = started + timeout
            while time.monotonic() < deadline:  # bounded: a few control frames at most
                opcode, data = conn.recv_data(control_frame=False)
                if opcode == websocket.ABNF.OPCODE_BINARY:
                    result = msgpack.unpackb(data, raw=False)
                    if isinstance(result, dict) and result.get("images"):
                        latency = int((time.monotonic() - started) * 1000)
                        verdict = {"ok": True, "code": "", "latency_ms": latency,
                                   "message": _("The relay answered with a rendered frame in %s ms.", latency)}
                        return verdict
                    return self._probe_failure("BAD_FRAME", _("The relay answered with a frame without images."))
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    return self._probe_text(data)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    return self._probe_failure("CLOSED", _("The relay closed the connection without a reason."))
            return self._probe_failure("TIMEOUT", _("The relay sent no frame within %s seconds.", timeout))
        except websocket.WebSocketBadStatusException as exc:
            body = (exc.resp_body or b"")[:300].decode(errors="replace") if exc.resp_body else ""
            message = _("The relay refused the WebSocket handshake (HTTP %(status)s). %(body)s",
                        status=exc.status_code, body=body)
            return self._probe_failure(f"HTTP_{exc.status_code}", message)
        except websocket.WebSocketTimeoutException:
            return self._probe_failure("TIMEOUT", _("The relay did not answer within %s seconds.", timeout))
        except websocket.WebSocketConnectionClosedException:
            return self._probe_failure("CLOSED", _("The relay closed the connection without a reason."))
        except OSError as exc:
            return self._probe_failure("UNREACHABLE", _("Cannot reach the relay at %(url)s: %(error)s",
                                                        url=relay_url, error=exc.strerror or exc))
        finally:
            if conn is not None:
                if verdict and verdict["ok"]:
                    conn.close(timeout=1)
                else:
                    # The relay already closed with its own code; a closing handshake would only
                    # make websocket-client log that code as an error.
                    conn.shutdown()

    @api.model
    def _probe_text(self, data):
        """Turn a relay text frame into a probe verdict."""
        try:
            message = json.loads(data)
        except ValueError:
            return self._probe_failure("BAD_FRAME", _("The relay sent an unreadable text frame."))
        if isinstance(message, dict) and message.get("type") == "x-fal-error":
            code = str(message.get("error") or "ERROR")
            reason = str(message.get("reason") or "")
            hint = self._error_hint(code, reason)
            return self._probe_failure(code, _("The relay said %(code)s: %(reason)s %(hint)s",
                                               code=code, reason=reason, hint=hint).strip())
        return self._probe_failure("BAD_FRAME", _("The relay sent an unexpected message instead of a frame."))

    @api.model
    def _error_hint(self, code, reason):
        """What a person should read for a relay error; a ticket refused as not yet valid is a clock matter.

        :param code: the relay's error code
        :param reason: the relay's reason text
        :return: the hint in the user's language, or ``""``
        """
        if code == "UNAUTHORIZED" and "not valid yet" in (reason or ""):
            code = "NOT_YET_VALID"
        return str(ERROR_HINTS.get(code, ""))

    @api.model
    def _probe_failure(self, code, message):
        _logger.info("realtime relay probe failed: %s", code)
        return {"ok": False, "code": code, "message": message, "latency_ms": 0}
