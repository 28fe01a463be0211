from odoo import _, api, fields, models
from odoo.exceptions import UserError

from .fal_realtime_relay import (
    DEFAULT_ALLOWED_APPS,
    DEFAULT_TICKET_LIFETIME,
    LOCAL_PREVIEW_APP,
    MAX_TICKET_LIFETIME,
    MIN_TICKET_LIFETIME,
    PARAM_SHARED_SECRET,
    normalize_relay_url,
    parse_app_ids,
)


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    fal_realtime_relay_url = fields.Char(
        string="Relay Public URL",
        config_parameter="llm_fal_ai_realtime.relay_url",
        help="http(s) URL under which browsers reach the realtime relay, e.g. https://relay.example.com",
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
    fal_realtime_previous_secret_info = fields.Char(
        string="Previous Secret",
        compute="_compute_fal_realtime_secret_is_set",
    )
    fal_realtime_secret_is_set = fields.Boolean(
        string="Shared Secret Set",
        compute="_compute_fal_realtime_secret_is_set",
    )
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

    def _compute_fal_realtime_secret_is_set(self):
        is_set = bool(self.env["ir.config_parameter"].sudo().get_param(PARAM_SHARED_SECRET))
        previous = self.env["llm.fal.realtime.relay"]._previous_secret_info()
        for settings in self:
            settings.fal_realtime_secret_is_set = is_set
            settings.fal_realtime_previous_secret_info = previous

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
            self.env["llm.fal.realtime.relay"]._rotate_secret(secret, (self.fal_realtime_shared_secret_kid or "").strip())

    def action_fal_realtime_test_connection(self):
        """Open a real WebSocket to the relay with a fresh ticket and report what happened.

        Uses the values in the form (a newly typed secret included), else the stored ones.

        :return: a ``display_notification`` client action
        """
        self.ensure_one()
        relay = self.env["llm.fal.realtime.relay"]
        stored = relay._get_config(raise_if_incomplete=False)
        url = self.fal_realtime_relay_url or stored["relay_url"]
        typed = (self.fal_realtime_shared_secret or "").strip()
        secret = typed or stored["secret"]
        kid = (self.fal_realtime_shared_secret_kid or "").strip() if typed else stored["kid"]
        if not url or not secret:
            raise UserError(_("Set the relay URL and the shared secret first."))
        apps = parse_app_ids(self.env, self.fal_realtime_allowed_apps) or [LOCAL_PREVIEW_APP]
        app = LOCAL_PREVIEW_APP if LOCAL_PREVIEW_APP in apps else apps[0]
        verdict = relay._probe(url, secret, app, kid=kid or None)
        if verdict["ok"]:
            title = _("Relay connection OK (%s)", app)
        else:
            title = _("Relay connection failed (%s)", app)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": verdict["message"],
                "type": "success" if verdict["ok"] else "danger",
                "sticky": not verdict["ok"],
            },
        }
