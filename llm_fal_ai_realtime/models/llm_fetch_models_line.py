from odoo import api, fields, models

from .llm_model import REALTIME_KINDS, realtime_kind


class LLMFetchModelsLine(models.TransientModel):
    _inherit = "llm.fetch.models.line"

    realtime_kind = fields.Selection(
        REALTIME_KINDS,
        string="Realtime",
        compute="_compute_realtime_kind",
        help="Marks the models the chat opens as a live canvas: fal.ai realtime models, and the relay's "
        "embedded CPU preview (not a fal.ai model).",
    )

    @api.depends("details")
    def _compute_realtime_kind(self):
        """From ``details['realtime']['app_id']``, where Fetch Models puts a realtime model's app."""
        for line in self:
            realtime = line.details.get("realtime") if isinstance(line.details, dict) else None
            line.realtime_kind = realtime_kind(realtime.get("app_id") if isinstance(realtime, dict) else None)
