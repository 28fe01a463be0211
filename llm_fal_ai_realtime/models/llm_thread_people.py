"""Who is invited into a live canvas, and their chat lists following it without a reload.

A realtime thread's participants are its followers (``_fal_realtime_participants``). Whoever adds
them (the chat header's Invite, or the thread form's chatter),
the colleague's open LLM > Chat lists the thread at once, and drops it when they are removed:
llm_thread fills the chat list only when the page loads (``_init_messaging``).
"""

from odoo import models

from odoo.addons.mail.tools.discuss import Store

INVITED_NOTIFICATION = "llm_fal_ai_realtime/invited"
REMOVED_NOTIFICATION = "llm_fal_ai_realtime/removed"


class LLMThread(models.Model):
    _inherit = "llm.thread"

    def _thread_to_store(self, store, **kwargs):
        """Realtime threads also say whose they are, so only the owner's chat offers Invite."""
        super()._thread_to_store(store, **kwargs)
        for thread in self.sudo().filtered(lambda record: record._fal_realtime_is_room()):
            store.add("mail.thread", {"id": thread.id, "model": self._name,
                                      "fal_realtime_owner_id": thread.user_id.id})

    def _message_subscribe(self, partner_ids=None, subtype_ids=None, customer_ids=None):
        rooms = self.filtered(lambda record: record._fal_realtime_is_room())
        before = {thread.id: thread.sudo().message_partner_ids for thread in rooms}
        result = super()._message_subscribe(partner_ids=partner_ids, subtype_ids=subtype_ids,
                                            customer_ids=customer_ids)
        for thread in rooms:
            added = thread.sudo().message_partner_ids - before[thread.id] - thread.sudo().user_id.partner_id
            if added:
                store = Store()
                thread.sudo()._thread_to_store(store)
                payload = {"thread_id": thread.id, "store": store.get_result()}
                for partner in thread._fal_realtime_colleagues(added):
                    partner._bus_send(INVITED_NOTIFICATION, payload)
        return result

    def message_unsubscribe(self, partner_ids=None):
        rooms = self.filtered(lambda record: record._fal_realtime_is_room())
        removed = {thread.id: thread.sudo().message_partner_ids.filtered(lambda p: p.id in (partner_ids or []))
                   for thread in rooms}
        result = super().message_unsubscribe(partner_ids=partner_ids)
        for thread in rooms:
            gone = removed[thread.id] - thread.sudo().user_id.partner_id
            if gone:
                thread._fal_realtime_let_go(gone.user_ids)
            for partner in thread._fal_realtime_colleagues(gone):
                partner._bus_send(REMOVED_NOTIFICATION, {"thread_id": thread.id})
        return result

    def _fal_realtime_let_go(self, users):
        """``users`` left the canvas: the pen they held goes back to the owner, their request and their
        open tabs go, and the people still in it see so at once."""
        thread = self.sudo()
        changes = {}
        if thread.fal_realtime_driver_id & users:
            changes["fal_realtime_driver_id"] = False
        if thread.fal_realtime_pen_request_id & users:
            changes["fal_realtime_pen_request_id"] = False
        if changes:
            thread.write(changes)
        self.env["llm.fal.realtime.watcher"].sudo().search([
            ("thread_id", "=", thread.id), ("user_id", "in", users.ids),
        ]).unlink()
        self._fal_realtime_notify_pen()

    def _fal_realtime_colleagues(self, partners):
        """The partners among ``partners`` who use Odoo as employees: only they read a live canvas."""
        return partners.filtered(lambda partner: any(not user.share for user in partner.sudo().user_ids))
