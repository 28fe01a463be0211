"""Assistants whose model is realtime shape the live canvas instead of a chat.

Such an assistant's prompt template wraps the composer text and its default values set the
realtime inputs (``llm.thread.fal_realtime_canvas``); its system-prompt machinery plays no part,
so it needs no prompt template to be saved.
"""

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

LIVE_SKETCH_XMLID = "llm_fal_ai_realtime.llm_assistant_live_sketch"


class LLMAssistant(models.Model):
    _inherit = "llm.assistant"

    # llm_assistant requires a prompt template; a realtime assistant may go without (see _check_prompt_template).
    prompt_id = fields.Many2one(required=False)
    fal_realtime = fields.Boolean(
        string="Shapes a live canvas",
        related="model_id.is_realtime",
        help="The model is realtime: the prompt template wraps what the user types ({{prompt}}) and the default "
             "values set the live canvas inputs (steps, width, height, strength, seed, seed_policy).",
    )

    @api.constrains("prompt_id", "model_id")
    def _check_prompt_template(self):
        """A chat assistant needs its prompt template, as llm_assistant requires; a realtime one does not."""
        for assistant in self:
            if not assistant.prompt_id and not assistant.model_id.is_realtime:
                raise ValidationError(_("Assistant %s needs a prompt template (only assistants of a realtime model "
                                        "can go without).", assistant.name))

    @api.model
    def _fal_realtime_link_live_sketch(self, models):
        """Put the shipped "Live sketch" assistant on the first local/preview model it meets, if it has none."""
        assistant = self.env.ref(LIVE_SKETCH_XMLID, raise_if_not_found=False)
        preview = models.filtered(lambda model: model.realtime_app_id == "local/preview")[:1]
        if assistant and preview and not assistant.model_id:
            assistant.sudo().write({"provider_id": preview.provider_id.id, "model_id": preview.id})
