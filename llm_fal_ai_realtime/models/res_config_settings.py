from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..tools.fal_webhook import FAL_JWKS_URL
from .fal_realtime_relay import (
    DEFAULT_ALLOWED_APPS,
    DEFAULT_TICKET_LIFETIME,
    MAX_TICKET_LIFETIME,
    MIN_TICKET_LIFETIME,
    PARAM_SHARED_SECRET,
    app_label,
    normalize_relay_url,
    parse_app_ids,
)
from .llm_generation_job import PARAM_FINAL_RESULTS, PARAM_WEBHOOK_JWKS_URL, RESULTS_POLLING, RESULTS_WEBHOOK


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    fal_realtime_relay_url = fields.Char(
        string="Relay Public URL",
        config_parameter="llm_fal_ai_realtime.relay_url",
        help="Where browsers reach the realtime relay, e.g. wss://relay.example.com (https:// works too; "
        "it is stored as https://, and wss:// is used for the live canvas).",
    )
    # Write-only: the stored secret is never read into this field, so it never reaches a browser.
    fal_realtime_shared_secret = fields.Char(
        string="New Shared Secret",
        help="Secret shared with the relay (RELAY_SHARED_SECRET) to sign tickets. "
        "Leave empty to keep the current one; it is never shown again.",
    )
    fal_realtime_shared_secret_kid = fields.Char(
        string="Key ID of the New Secret",
        help="Name of the new secret as the relay lists it in RELAY_SHARED_SECRETS (kid=secret): tickets carry "
        "it, so the relay checks them against that secret only. Empty: tickets carry no key id and the relay "
        "uses RELAY_SHARED_SECRET. Saving a new secret keeps the old one beside it until its tickets expire.",
    )
    fal_realtime_secret_kid = fields.Char(
        string="Current Key ID",
        config_parameter="llm_fal_ai_realtime.secret_kid",
        readonly=True,
    )
    fal_realtime_previous_secret_info = fields.Char(string="Previous Secret", readonly=True)  # from get_values
    # From get_values, never saved by the form: the issuer is set once (llm.fal.realtime.relay._issuer).
    fal_realtime_issuer = fields.Char(
        string="Ticket Issuer",
        readonly=True,
        help="The issuer (iss) every ticket names, set once when the addon was installed; the relay's "
        "RELAY_ISSUERS keys its secrets, apps and limits by it. It does not follow the base URL.",
    )
    # Filled by get_values (the form's defaults): a computed field without dependencies is not
    # computed for the new record the settings page edits, so the page said "No shared secret yet".
    fal_realtime_secret_is_set = fields.Boolean(string="Shared Secret Set", readonly=True)
    fal_realtime_allowed_apps = fields.Char(
        string="Allowed Realtime Apps",
        config_parameter="llm_fal_ai_realtime.allowed_apps",
        default=DEFAULT_ALLOWED_APPS,
        help="Comma-separated app ids users may open, e.g. local/preview, fal-ai/fast-lcm-diffusion",
    )
    fal_realtime_ticket_lifetime = fields.Integer(
        string="Ticket Lifetime (s)",
        config_parameter="llm_fal_ai_realtime.ticket_lifetime",
        default=DEFAULT_TICKET_LIFETIME,
        help="Seconds a browser ticket stays valid (30-600); the live canvas renews it before it expires.",
    )

    fal_realtime_final_results = fields.Selection(
        [(RESULTS_WEBHOOK, "fal's signed webhook (status polling as fallback)"),
         (RESULTS_POLLING, "Status polling only (no webhook)")],
        string="Render Final Results",
        config_parameter=PARAM_FINAL_RESULTS,
        default=RESULTS_WEBHOOK,
        help="How Render final learns that fal has finished. The webhook is verified with fal's ED25519 "
        "signature; choose polling when fal cannot reach this Odoo (polling checks once a minute).",
    )
    fal_realtime_webhook_jwks_url = fields.Char(
        string="fal Webhook Keys",
        config_parameter=PARAM_WEBHOOK_JWKS_URL,
        default=FAL_JWKS_URL,
        help="Where fal publishes the public keys (JWKS) its webhook deliveries are signed with.",
    )

    @api.constrains("fal_realtime_webhook_jwks_url")
    def _check_fal_realtime_webhook_jwks_url(self):
        for settings in self:
            url = settings.fal_realtime_webhook_jwks_url
            if url and not url.startswith(("https://", "http://")):
                raise UserError(_("The fal webhook key set must be an http(s) URL, not %s.", url))

    @api.model
    def get_values(self):
        res = super().get_values()
        res["fal_realtime_secret_is_set"] = bool(self.env["ir.config_parameter"].sudo().get_param(PARAM_SHARED_SECRET))
        res["fal_realtime_previous_secret_info"] = self.env["llm.fal.realtime.relay"]._previous_secret_info()
        res["fal_realtime_issuer"] = self.env["llm.fal.realtime.relay"]._issuer()
        return res

    @api.constrains("fal_realtime_ticket_lifetime")
    def _check_fal_realtime_ticket_lifetime(self):
        for settings in self:
            lifetime = settings.fal_realtime_ticket_lifetime
            if lifetime and not MIN_TICKET_LIFETIME <= lifetime <= MAX_TICKET_LIFETIME:
                raise UserError(_("The ticket lifetime must be between %(min)s and %(max)s seconds.",
                                  min=MIN_TICKET_LIFETIME, max=MAX_TICKET_LIFETIME))

    @api.constrains("fal_realtime_relay_url", "fal_realtime_allowed_apps")
    def _check_fal_realtime_relay(self):
        for settings in self:
            if settings.fal_realtime_relay_url:
                normalize_relay_url(self.env, settings.fal_realtime_relay_url)
            parse_app_ids(self.env, settings.fal_realtime_allowed_apps)

    def set_values(self):
        super().set_values()
        if self.fal_realtime_relay_url:
            self.env["ir.config_parameter"].sudo().set_param(
                "llm_fal_ai_realtime.relay_url", normalize_relay_url(self.env, self.fal_realtime_relay_url))
        secret = (self.fal_realtime_shared_secret or "").strip()
        if secret:
            kid = (self.fal_realtime_shared_secret_kid or "").strip()
            self.env["llm.fal.realtime.relay"]._rotate_secret(secret, kid)

    @api.model
    def fal_realtime_check(self, relay_url=None, secret=None, allowed_apps=None, kid=None):
        """Test connection with the values on screen, saved or not (the settings page's button).

        Empty URL or secret fall back to the stored ones (the secret field is never filled from storage).
        Nothing is saved here; a bad value is part of the verdict, not an error, so the form stays usable.

        :param relay_url: the relay URL as typed (ws(s) or http(s))
        :param secret: a newly typed shared secret, or empty
        :param allowed_apps: the allowed apps as typed
        :param kid: the key id typed beside a new secret (used only with that secret)
        :return: dict ``{ok, title, message, app, relay_apps, refused, not_allowed, labels}``;
            ``labels`` maps app ids to how they are shown
        :raise AccessError: for anyone but a settings administrator
        """
        if not self.env.user.has_group("base.group_system"):
            raise AccessError(_("Only administrators may test the realtime relay."))
        relay = self.env["llm.fal.realtime.relay"]
        stored = relay._get_config(raise_if_incomplete=False)
        url = (relay_url or "").strip() or stored["relay_url"]
        typed = (secret or "").strip()
        secret = typed or stored["secret"]
        kid = (kid or "").strip() if typed else stored["kid"]
        verdict = {"ok": False, "app": "", "relay_apps": [], "refused": [], "not_allowed": []}
        try:
            if not url or not secret:
                raise UserError(_("Set the relay URL and the shared secret first."))
            url = normalize_relay_url(self.env, url)
            apps = parse_app_ids(self.env, allowed_apps if allowed_apps is not None else
                                 ",".join(stored["allowed_apps"]))
            verdict.update(relay._check(url, secret, apps, kid=kid or None))
        except UserError as exc:
            verdict["message"] = str(exc.args[0])
        app = verdict["app"]
        if verdict["ok"]:
            title = _("Relay connection OK (%s)", app)
        elif app:
            title = _("Relay connection failed (%s)", app)
        else:
            title = _("Relay connection failed")
        shown = set(verdict["relay_apps"]) | set(verdict["refused"])
        return {**verdict, "title": title, "labels": {app: app_label(self.env, app) for app in shown}}
