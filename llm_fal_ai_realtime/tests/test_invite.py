"""Who is in a live canvas: its owner invites and removes colleagues; nobody else can, or can peek."""

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .room import RoomCase

LIVE = 2000  # ms


@tagged("post_install", "-at_install")
class TestInvite(RoomCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.newcomer = new_test_user(cls.env, login="rt_newcomer", groups="base.group_user", name="Realtime Newcomer")
        cls.customer = new_test_user(cls.env, login="rt_customer", groups="base.group_portal", name="A Customer")

    def dialog(self, user, thread=None):
        Invite = self.env["llm.fal.realtime.invite"].with_user(user)
        thread = thread or self.thread
        values = Invite.with_context(default_thread_id=thread.id).default_get(["thread_id", "user_ids"])
        return Invite.create({"thread_id": thread.id, **{k: v for k, v in values.items() if k == "user_ids"}})

    def test_the_owner_invites_and_removes(self):
        """The dialog opens with who is in; added people read the canvas and their chats list it; removed
        ones lose it, and the pen they held goes back to the owner."""
        dialog = self.dialog(self.owner)
        self.assertEqual(set(dialog.user_ids.ids), {self.follower.id, self.third.id})
        since = self.last_bus_id()
        dialog.user_ids = [(4, self.newcomer.id)]
        dialog.action_save()
        self.assertIn(self.newcomer.partner_id, self.thread.message_partner_ids)
        self.thread.with_user(self.newcomer).check_access("read")
        invited = self.bus_notes(since, "llm_fal_ai_realtime/invited")
        self.assertEqual(list(invited), [self.newcomer.partner_id.id], "only the newcomer is told")
        (payload,) = invited[self.newcomer.partner_id.id]
        self.assertEqual(payload["thread_id"], self.thread.id)
        self.assertIn(self.thread.id, [thread["id"] for thread in payload["store"]["mail.thread"]])

        self.thread.sudo().fal_realtime_driver_id = self.follower
        self.thread.sudo().fal_realtime_pen_request_id = self.third
        since = self.last_bus_id()
        dialog = self.dialog(self.owner)
        dialog.user_ids = [(3, self.follower.id), (3, self.third.id)]
        dialog.action_save()
        self.assertEqual(self.thread.message_partner_ids, self.owner.partner_id | self.newcomer.partner_id)
        self.assertFalse(self.thread.fal_realtime_driver_id, "the pen went back to the owner")
        self.assertFalse(self.thread.fal_realtime_pen_request_id)
        removed = self.bus_notes(since, "llm_fal_ai_realtime/removed")
        self.assertEqual(set(removed), {self.follower.partner_id.id, self.third.partner_id.id})
        pen = self.bus_notes(since, "llm_fal_ai_realtime/pen")
        self.assertIn(self.newcomer.partner_id.id, pen, "who stays in sees the pen move")
        with self.assertRaises(AccessError):
            self.thread.with_user(self.follower).check_access("read")

    def test_nobody_else_chooses_or_peeks(self):
        """A follower and a stranger cannot change who is in; a stranger's dialog shows nobody; only
        employees join, and only live canvases take people."""
        with self.assertRaisesRegex(AccessError, "Only the owner"):
            dialog = self.dialog(self.follower)
            dialog.user_ids = [(4, self.newcomer.id)]
            dialog.action_save()
        stranger_dialog = self.dialog(self.stranger)
        self.assertFalse(stranger_dialog.user_ids, "a stranger does not learn who is in someone's canvas")
        stranger_dialog.user_ids = [(4, self.stranger.id)]
        with self.assertRaisesRegex(AccessError, "Only the owner"):
            stranger_dialog.action_save()
        self.assertNotIn(self.stranger.partner_id, self.thread.message_partner_ids)
        with self.assertRaisesRegex(UserError, "employees"):
            dialog = self.dialog(self.owner)
            dialog.user_ids = [(4, self.customer.id)]
            dialog.action_save()
        plain = self.env["llm.thread"].with_user(self.owner).create({
            "name": "Plain chat", "provider_id": self.provider.id, "model_id": self.plain_model.id})
        with self.assertRaisesRegex(UserError, "Only a live canvas"):
            self.dialog(self.owner, plain).action_save()

    def test_a_colleague_over_json_rpc_cannot_add_himself(self):
        """As a second employee over JSON-RPC: the dialog's save on someone's canvas is an AccessError."""
        self.authenticate("rt_stranger", "rt_stranger")
        call = {"model": "llm.fal.realtime.invite", "method": "create", "args": [{
            "thread_id": self.thread.id, "user_ids": [[6, 0, [self.stranger.id]]]}], "kwargs": {}}
        created = self.jsonrpc("/web/dataset/call_kw", call)
        self.assertIn("result", created, created)
        saved = self.jsonrpc("/web/dataset/call_kw", {
            "model": "llm.fal.realtime.invite", "method": "action_save", "args": [[created["result"]]], "kwargs": {}})
        self.assertRpcError(saved, "odoo.exceptions.AccessError", "Only the owner")
        self.assertNotIn(self.stranger.partner_id, self.thread.message_partner_ids)

    def invite_in_browsers(self, **params):
        """The owner invites the newcomer and removes them again, the newcomer's chat open in a second
        browser, nobody reloading: listed < 2 s after Save, gone (with its canvas) < 2 s after removal."""
        self.require_relay()
        result = self.run_browsers("invite", ["rt_owner", "rt_newcomer"], thread_id=self.thread.id,
                                   thread_name=self.thread.name, login="rt_newcomer", name="Realtime Newcomer",
                                   **params)
        self.assertLess(result["invited_ms"], LIVE, result)
        self.assertLess(result["removed_ms"], LIVE, result)
        self.assertNotIn(self.newcomer.partner_id, self.thread.message_partner_ids)
        return result

    def test_invited_and_removed_live_in_the_browser(self):
        """From the desktop header."""
        self.invite_in_browsers()

    def test_the_owner_invites_from_a_phone(self):
        """In a 390 px window the chat has no thread header: Invite is in its bar, and works the same; the
        owner, in the canvas already, is not offered."""
        result = self.invite_in_browsers(phone=True)
        self.assertTrue(any("Realtime Newcomer" in person for person in result["offered"]), result)
        self.assertFalse(any("Realtime Owner" in person for person in result["offered"]), result)
