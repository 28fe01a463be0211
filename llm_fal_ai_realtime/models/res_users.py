from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def _init_messaging(self, store):
        """Also load the live canvases this user follows, so participants can watch their preview.

        Only realtime threads: an ordinary AI chat someone else owns stays out of this user's list,
        even when they follow it (the follower rule lets them read live canvases only).
        """
        super()._init_messaging(store)
        shared = self.env["llm.thread"].search([
            ("user_id", "!=", self.id),
            ("model_id.is_realtime", "=", True),
            ("message_partner_ids", "in", self.partner_id.ids),
            ("active", "=", True),
        ], order="write_date DESC")
        if shared:
            shared._thread_to_store(store)
