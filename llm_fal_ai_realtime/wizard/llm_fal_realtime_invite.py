"""Who is in a live canvas: its owner picks colleagues, who become its followers (its participants).

mail's own Add Followers asks for an email address per person and offers every contact; a live
canvas is for colleagues who use Odoo, and needs no email to reach them (the bus does).
"""

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError


class LLMFalRealtimeInvite(models.TransientModel):
    _name = "llm.fal.realtime.invite"
    _description = "Invite colleagues to a live canvas"

    thread_id = fields.Many2one("llm.thread", required=True, ondelete="cascade")
    owner_id = fields.Many2one(related="thread_id.user_id", string="Owner")  # in the canvas already: not offered
    user_ids = fields.Many2many(
        "res.users", string="People",
        domain="[('share', '=', False), ('id', '!=', owner_id)]",
        help="Colleagues who watch this live canvas, comment and may hold the pen. "
             "Remove someone to take them out of it.",
    )

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        thread = self.env["llm.thread"].browse(values.get("thread_id") or self.env.context.get("default_thread_id"))
        if "user_ids" in fields_list and thread.exists() and thread.has_access("read"):
            values["user_ids"] = [fields.Command.set(self._participant_users(thread).ids)]
        return values

    @api.model
    def _participant_users(self, thread):
        """The internal users following ``thread``, its owner aside."""
        partners = thread.sudo().message_partner_ids - thread.sudo().user_id.partner_id
        return partners.user_ids.filtered(lambda user: not user.share)

    def action_save(self):
        """Make the chosen colleagues the canvas's participants; only who may change the thread may."""
        self.ensure_one()
        thread = self.thread_id
        if not thread._fal_realtime_is_room():
            raise UserError(_("Only a live canvas takes participants."))
        try:
            thread.check_access("write")
        except AccessError:
            raise AccessError(_("Only the owner of this live canvas can choose who is in it.")) from None
        chosen = self.user_ids.sudo()
        if chosen.filtered("share"):
            raise UserError(_("Only colleagues who use Odoo as employees can join a live canvas."))
        current = self._participant_users(thread)
        added = (chosen - current - thread.sudo().user_id).partner_id
        removed = (current - chosen).partner_id
        if added:
            thread.message_subscribe(partner_ids=added.ids)
        if removed:
            thread.message_unsubscribe(partner_ids=removed.ids)
        return {"type": "ir.actions.act_window_close"}
