"""Who has a realtime thread open right now: one row per browser tab showing its live canvas.

Rows are kept alive by the tab's heartbeat and go when the tab says goodbye or stops beating, so
everyone in the room sees the same list of people watching. Only the room's own methods (through
sudo, after checking the thread) touch them.
"""

from datetime import timedelta

from odoo import api, fields, models

# A tab beats every HEARTBEAT_SECONDS (live_canvas's room); two missed beats and a bit: it is gone.
HEARTBEAT_SECONDS = 15
STALE_SECONDS = 2 * HEARTBEAT_SECONDS + 10


class FalRealtimeWatcher(models.Model):
    _name = "llm.fal.realtime.watcher"
    _description = "Live canvas watcher (a browser tab with a realtime thread open)"
    _order = "id"

    thread_id = fields.Many2one("llm.thread", required=True, ondelete="cascade", index=True)
    user_id = fields.Many2one("res.users", required=True, ondelete="cascade")
    tab = fields.Char(required=True, help="A random id the browser tab made for itself.")
    last_seen = fields.Datetime(required=True, default=fields.Datetime.now)
    last_active = fields.Datetime(required=True, default=fields.Datetime.now,
                                  help="When the person last typed or clicked in this tab.")

    _sql_constraints = [
        ("thread_tab_unique", "unique(thread_id, tab)", "A tab is in a room once."),
    ]

    @api.model
    def _stale_before(self):
        return fields.Datetime.now() - timedelta(seconds=STALE_SECONDS)

    @api.autovacuum
    def _gc_stale_watchers(self):
        """Tabs that stopped beating without saying goodbye (a crash, a lost network)."""
        self.sudo().search([("last_seen", "<", self._stale_before())]).unlink()
