from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def _init_messaging(self, store):
        """Also load the chat threads this user follows, so participants can watch their live preview."""
        super()._init_messaging(store)
        shared = self.env["llm.thread"].search([
            ("user_id", "!=", self.id),
            ("message_partner_ids", "in", self.partner_id.ids),
            ("active", "=", True),
        ], order="write_date DESC")
        if shared:
            shared._thread_to_store(store)
