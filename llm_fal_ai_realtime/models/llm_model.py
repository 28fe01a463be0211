from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from .fal_realtime_relay import APP_ID_RE


class LLMModel(models.Model):
    _inherit = "llm.model"

    realtime_app_id = fields.Char(
        string="Realtime App",
        compute="_compute_realtime_app_id",
        store=True,
        readonly=False,
        help="fal realtime app this model opens over the relay, e.g. fal-ai/fast-lcm-diffusion "
        "(local/preview is the relay's embedded preview app). Empty: not a realtime model.",
    )
    is_realtime = fields.Boolean(
        string="Realtime",
        compute="_compute_is_realtime",
        store=True,
        help="The chat shows a live canvas for threads using this model.",
    )

    @api.depends("details")
    def _compute_realtime_app_id(self):
        """Take the app id from ``details['realtime']['app_id']`` (set by Fetch Models)."""
        for model in self:
            realtime = (model.details or {}).get("realtime") if isinstance(model.details, dict) else None
            app = realtime.get("app_id") if isinstance(realtime, dict) else None
            model.realtime_app_id = app or model.realtime_app_id or False

    @api.depends("realtime_app_id")
    def _compute_is_realtime(self):
        for model in self:
            model.is_realtime = bool(model.realtime_app_id)

    @api.constrains("realtime_app_id")
    def _check_realtime_app_id(self):
        for model in self:
            if model.realtime_app_id and not APP_ID_RE.match(model.realtime_app_id):
                raise ValidationError(_("'%(app)s' is not a realtime app id (expected owner/alias, e.g. %(example)s).",
                                        app=model.realtime_app_id, example="fal-ai/fast-lcm-diffusion"))
