"""Comments on the picture show in the chat of a realtime thread, and changed messages reach the room.

llm_thread's chat lists only messages with an LLM role; a comment on the live canvas has none (so
no generation reads it as a prompt), and would vanish on the next load. This adds the comments
(notes) back to what the chat of an llm.thread fetches. A message of a realtime thread whose body
changes (a final render marked as failed) is pushed to everyone in the thread again.
"""

from odoo import api, models
from odoo.osv import expression


class MailMessage(models.Model):
    _inherit = "mail.message"

    @api.model
    def _fal_realtime_chat_domain(self):
        """What the chat of an llm.thread shows: messages with an LLM role, and the participants' comments."""
        note = self.env.ref("mail.mt_note").id
        return expression.OR([[("llm_role", "!=", False)],
                              [("message_type", "=", "comment"), ("subtype_id", "=", note)]])

    def write(self, vals):
        result = super().write(vals)
        if "body" in vals:
            for message in self.filtered(lambda message: message.model == "llm.thread" and message.res_id):
                thread = self.env["llm.thread"].sudo().browse(message.res_id).exists()
                if thread and thread._fal_realtime_is_room():
                    thread._fal_realtime_push_message(message)
        return result

    @api.model
    def _message_fetch(self, domain, search_term=None, before=None, after=None, around=None, limit=30):
        """For llm.thread: messages with an LLM role, as llm_thread shows, and the participants' comments."""
        if not any(isinstance(term, (list, tuple)) and tuple(term) == ("model", "=", "llm.thread") for term in domain):
            return super()._message_fetch(domain, search_term=search_term, before=before, after=after,
                                          around=around, limit=limit)
        # Spelled ("model", "in", [...]) so that llm_thread's override leaves the filter to this one.
        domain = [("model", "in", ["llm.thread"]) if isinstance(term, (list, tuple))
                  and tuple(term) == ("model", "=", "llm.thread") else term for term in domain]
        shown = self._fal_realtime_chat_domain()
        return super()._message_fetch(expression.AND([domain, shown]), search_term=search_term, before=before,
                                      after=after, around=around, limit=limit)
