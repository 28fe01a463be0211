"""A thread's live session belongs to the thread and its current model.

The relay ties a live session to the app of its first connection; a thread whose model is switched
while people watch would keep the old app's session, and the relay would refuse the new app. So the
session id is derived from the thread and its app: a model switch moves everyone (told on the bus)
to a new session, and no participant can lock the others out by opening the thread's session with
another app, since the app of a ticket is always the thread's own.
"""

import hashlib
import hmac

from odoo import api, models


class FalRealtimeRelay(models.AbstractModel):
    _inherit = "llm.fal.realtime.relay"

    @api.model
    def _session_id(self, thread):
        """A stable live-session id per thread and app that nobody can guess (32 hex characters)."""
        params = self.env["ir.config_parameter"].sudo()
        key = (params.get_param("database.secret") or "").encode()
        app = thread.sudo().model_id.realtime_app_id or ""
        msg = f"llm_fal_ai_realtime.session:{params.get_param('database.uuid')}:{thread.id}:{app}".encode()
        return hmac.new(key, msg, hashlib.sha256).hexdigest()[:32]
