"""A realtime thread is a live room: two and three people, each in their own browser, nobody reloading."""

import json
from datetime import timedelta
from types import SimpleNamespace

from odoo import fields, http
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .room import RoomCase

LIVE = 2000  # ms: a kept frame, a comment, a model switch reach the others within this


@tagged("post_install", "-at_install")
class TestLiveRoom(RoomCase):
    def test_comments_and_kept_frames_reach_everyone_live(self):
        """A kept frame and a colleague's comment reach the two others in < 2 s, each once, in every tab."""
        self.require_relay()
        result = self.run_browsers("live_messages", ["rt_owner", "rt_follower", "rt_third"],
                                   thread_id=self.thread.id)
        self.assertLess(result["comment_ms"], LIVE, result)
        self.assertLess(result["keep_ms"], LIVE, result)
        self.assertEqual(result["copies"], {"owner": 1, "owner_tab2": 1, "colleague": 1, "colleague_comment": 1,
                                            "owner_comment": 1})

    def test_who_is_there_and_the_pen_between_three_people(self):
        """Everyone sees the same people; "Not now" reaches the asker; a holder who leaves frees the pen."""
        self.require_relay()
        result = self.run_browsers("pen_and_presence", ["rt_owner", "rt_follower", "rt_third"],
                                   thread_id=self.thread.id)
        self.assertLess(result["watchers_ms"], LIVE, result)
        self.assertLess(result["pen_free_ms"], LIVE, result)
        self.assertEqual(result["watchers"], ["Realtime Owner*", "Realtime Follower"])
        self.assertFalse(self.thread.fal_realtime_driver_id, "the owner holds the pen again")

    def test_switching_the_model_moves_everyone(self):
        """Owner and viewer follow a model switch within 2 s: a model the relay cannot run says why, and back."""
        self.require_relay()
        result = self.run_browsers("model_switch", ["rt_owner", "rt_follower"], thread_id=self.thread.id,
                                   fal_model_id=self.lcm_model.id, preview_model_id=self.preview_model.id)
        self.assertLess(result["to_fal_ms"], LIVE, result)
        self.assertLess(result["back_ms"], LIVE, result)
        self.assertIn("FAL_KEY", result["fal_error"])
        self.assertNotIn("allow", result["fal_error"].split("APP_NOT_ALLOWED")[0].lower())

    def test_a_second_tab_offers_to_draw_here(self):
        """The owner's second tab says the canvas draws elsewhere, without retrying; Draw here moves the pen."""
        self.require_relay()
        result = self.run_browsers("second_tab", ["rt_owner"], thread_id=self.thread.id)
        self.assertEqual(result["status"], "Drawing in another tab")
        self.assertEqual(result["still_offered"], 1)
        self.assertEqual(result["first_tab_status"], "Drawing in another tab")

    def test_the_pen_holder_comments_and_files_are_sent(self):
        """The holder's Comment beside Keep; Shift+Enter is a new line; composer files go with Keep and comments."""
        self.require_relay()
        result = self.run_browsers("holder_comments", ["rt_owner", "rt_follower"], thread_id=self.thread.id)
        self.assertEqual(result["send_label"], "Keep")
        self.assertIn("Enter", result["send_title"])
        self.assertEqual(result["shift_enter"], "a castle\n")
        self.assertEqual(result["comment_label"], "Comment")
        self.assertLess(result["comment_ms"], LIVE, result)
        self.assertEqual(result["prompt_after_keep"], "a castle")
        kept = self.thread.message_ids.filtered(lambda message: message.llm_role == "user")
        self.assertEqual(sorted(kept.attachment_ids.mapped("mimetype")), ["image/jpeg", "text/plain"])
        comment = self.thread.message_ids.filtered(lambda message: "the attached idea" in str(message.body))
        self.assertEqual((comment.author_id, comment.attachment_ids.name), (self.owner.partner_id, "hat.txt"))
        comment = self.thread.message_ids.filtered(lambda message: "feathers would suit" in str(message.body))
        self.assertEqual((comment.author_id, comment.attachment_ids.name),
                         (self.follower.partner_id, "feathers.txt"))

    def test_a_phone_sized_window_opens_the_canvas(self):
        """A real 390 px window: LLM > Chat shows the realtime thread with its canvas strip and composer."""
        self.require_relay()
        self.thread.sudo().fal_realtime_driver_id = self.follower  # the owner watches until taking the pen
        result = self.run_browsers("phone", ["rt_owner"], thread_id=self.thread.id)
        self.assertEqual(result["width"], 390)
        self.assertFalse(result["form"], "no form view with the plain chatter")
        self.assertLessEqual(result["canvasHeight"], 130, "the compact strip")
        self.assertTrue(result["composerVisible"])
        self.assertTrue(result["expanded_after_pen"], "opened, the canvas stays open as the pen changes hands")

    def test_the_assistant_shapes_the_very_first_frame(self):
        """Picking "Live sketch" applies its template and seed to the next frame and Keep, with no reload."""
        self.require_relay()
        assistant = self.env.ref("llm_fal_ai_realtime.llm_assistant_live_sketch")
        assistant.write({"default_values": json.dumps({"seed": 1234, "seed_policy": "fixed"})})
        result = self.run_browsers("assistant_first_frame", ["rt_owner"], thread_id=self.thread.id,
                                   assistant_id=assistant.id)
        self.assertEqual(result["seed"], "1234")
        kept = self.thread.message_ids.filtered("attachment_ids")
        self.assertEqual(kept.body_json["prompt"], "a lighthouse, loose pencil sketch, soft light")
        self.assertEqual(kept.body_json["seed"], 1234)


@tagged("post_install", "-at_install")
class TestRoomRules(RoomCase):
    def room(self, user, action="beat", tab="tab-of-the-owner", idle=0):
        return self.thread.with_user(user).fal_realtime_room(action, tab, idle_seconds=idle)

    def test_a_removed_participant_stops_receiving(self):
        """Messages go to the participants of the moment: an unsubscribed follower gets nothing more."""
        bus = self.env["bus.bus"].sudo()
        self.deliver_bus()
        last = bus.search([], order="id desc", limit=1).id or 0
        self.thread.with_user(self.owner).fal_realtime_comment("first")
        self.deliver_bus()
        first = bus.search([("id", ">", last)]).filtered(lambda note: "llm_fal_ai_realtime/message" in note.message)
        partners = {json.loads(note.channel)[-1] for note in first}
        self.assertIn(self.follower.partner_id.id, partners)
        self.thread.sudo().message_unsubscribe(partner_ids=self.follower.partner_id.ids)
        last = bus.search([], order="id desc", limit=1).id
        self.thread.with_user(self.owner).fal_realtime_comment("second")
        self.deliver_bus()
        second = bus.search([("id", ">", last)]).filtered(lambda note: "llm_fal_ai_realtime/message" in note.message)
        partners = {json.loads(note.channel)[-1] for note in second}
        self.assertNotIn(self.follower.partner_id.id, partners)
        self.assertIn(self.owner.partner_id.id, partners)

    def pushed(self, since):
        """The message notifications written to the bus since ``since``: ``{partner id: [payload, ...]}``."""
        return self.bus_notes(since, "llm_fal_ai_realtime/message")

    def test_final_renders_and_their_failures_reach_the_room(self):
        """A final render landing (the assistant's message) and a failure marked on its request are pushed."""
        since = self.last_bus_id()
        request = self.thread.with_user(self.owner).message_post(body="a castle", llm_role="user",
                                                                 message_type="comment", email_from="o@example.com")
        self.thread._fal_realtime_mark_final_failed(request, SimpleNamespace(error_message="quota exceeded"))
        pushed = self.pushed(since)
        self.assertEqual(set(pushed), {self.owner.partner_id.id, self.follower.partner_id.id,
                                       self.third.partner_id.id})
        [payload] = pushed[self.follower.partner_id.id]  # posted and changed in one transaction: sent once
        [body] = [message["body"] for message in payload["store"]["mail.message"]]
        self.assertIn("quota exceeded", str(body))
        # What the chat does not list (a system notice) is not pushed either; the landed render is.
        since = self.last_bus_id()
        self.thread.message_post(body="a notice", message_type="notification", email_from="odoo@example.com")
        self.thread.message_post(body="the picture, at full quality", llm_role="assistant", message_type="comment",
                                 email_from="odoo@example.com")
        pushed = self.pushed(since)
        self.assertNotIn(self.stranger.partner_id.id, pushed)
        self.assertEqual(len(pushed[self.owner.partner_id.id]), 1)
        self.assertIn("full quality", str(pushed[self.owner.partner_id.id][0]["store"]["mail.message"]))

    def test_an_idle_pen_holder_frees_the_pen(self):
        """Idle past the configured time (or gone), the holder's pen is free for the first asker, not the others."""
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.pen_idle_seconds", "60")
        self.thread.with_user(self.owner).fal_realtime_give_pen(self.follower.id)
        self.room(self.follower, "join", tab="tab-of-the-follower", idle=10)
        self.assertFalse(self.thread._fal_realtime_pen_free())
        with self.assertRaisesRegex(UserError, "is drawing: ask for the pen"):
            self.thread.with_user(self.third).fal_realtime_take_pen()
        self.room(self.follower, "beat", tab="tab-of-the-follower", idle=61)
        self.assertTrue(self.thread._fal_realtime_pen_free())
        self.thread.with_user(self.third).fal_realtime_request_pen()
        with self.assertRaisesRegex(UserError, "Realtime Third asked for the pen first"):
            self.thread.with_user(self.owner).fal_realtime_request_pen()
        self.thread.with_user(self.third).fal_realtime_take_pen()
        self.assertEqual(self.thread.fal_realtime_driver_id, self.third)
        self.assertFalse(self.thread.fal_realtime_pen_request_id)
        # The owner can always take it back.
        self.thread.with_user(self.owner).fal_realtime_take_pen()
        self.assertFalse(self.thread.fal_realtime_driver_id)

    def test_stale_tabs_leave_the_room(self):
        """A tab that stopped beating is out of the room (and out of the pen holder's presence)."""
        self.room(self.owner, "join")
        self.room(self.follower, "join", tab="tab-of-the-follower")
        watcher = self.env["llm.fal.realtime.watcher"].search([("tab", "=", "tab-of-the-follower")])
        watcher.last_seen = fields.Datetime.now() - timedelta(minutes=5)
        state = self.room(self.owner)
        self.assertEqual([person["name"] for person in state["watchers"]], ["Realtime Owner"])
        self.env["llm.fal.realtime.watcher"]._gc_stale_watchers()
        self.assertFalse(watcher.exists(), "the autovacuum deletes what the room only skips")
        self.room(self.owner, "leave")
        self.assertTrue(self.thread._fal_realtime_pen_free(), "the owner closed the canvas: the pen is free")

    def test_room_and_pen_refusals(self):
        """Bad input gets a clear error; strangers are refused; only the holder answers a request."""
        with self.assertRaisesRegex(UserError, "action must be one of"):
            self.room(self.owner, "dance")
        with self.assertRaisesRegex(UserError, "tab must be"):
            self.room(self.owner, tab="x")
        with self.assertRaisesRegex(UserError, "idle_seconds must be"):
            self.room(self.owner, idle=-1)
        with self.assertRaises(AccessError):
            self.room(self.stranger, tab="tab-of-a-stranger")
        self.room(self.owner, "join")
        with self.assertRaisesRegex(UserError, "someone else's"):
            self.room(self.follower)
        with self.assertRaisesRegex(UserError, "holds the pen: ask for it"):
            self.room(self.follower, "draw", tab="tab-of-the-follower")
        with self.assertRaisesRegex(UserError, "Nobody is asking"):
            self.thread.with_user(self.owner).fal_realtime_decline_pen()
        self.thread.with_user(self.follower).fal_realtime_request_pen()
        with self.assertRaises(AccessError):
            self.thread.with_user(self.third).fal_realtime_decline_pen()
        self.authenticate("rt_stranger", "rt_stranger")
        response = self.jsonrpc("/llm_fal_ai_realtime/room", {"thread_id": self.thread.id, "action": "join",
                                                              "tab": "tab-of-a-stranger"})
        self.assertRpcError(response, "odoo.exceptions.AccessError", "")
        response = self.jsonrpc("/llm_fal_ai_realtime/pen", {"thread_id": self.thread.id, "action": "steal"})
        self.assertRpcError(response, "odoo.exceptions.UserError", "action must be")

    def test_the_app_is_the_threads_and_the_session_follows_it(self):
        """The browser cannot choose the app; switching the model gives the thread another live session."""
        self.authenticate("rt_follower", "rt_follower")
        route = "/llm_fal_ai_realtime/session"
        response = self.jsonrpc(route, {"thread_id": self.thread.id, "model_id": self.lcm_model.id})
        self.assertRpcError(response, "odoo.exceptions.UserError", "now uses local/preview")
        before = self.jsonrpc(route, {"thread_id": self.thread.id})["result"]
        self.thread.sudo().model_id = self.lcm_model
        after = self.jsonrpc(route, {"thread_id": self.thread.id})["result"]
        self.assertEqual((before["app"], after["app"]), ("local/preview", "fal-ai/fast-lcm-diffusion"))
        self.assertNotEqual(before["session"], after["session"])

    def upload(self, login, thread_id, model="llm.thread"):
        self.authenticate(login, login)
        response = self.url_open("/llm_fal_ai_realtime/attachment/upload", data={
            "csrf_token": http.Request.csrf_token(self), "is_pending": True, "thread_id": thread_id,
            "thread_model": model}, files={"ufile": ("sketch.txt", b"a hat", "text/plain")})
        self.assertEqual(response.status_code, 200)
        return response.json()

    def test_participants_upload_files_others_do_not(self):
        """A follower (read only) attaches files in a realtime thread; a stranger and other threads are refused."""
        answer = self.upload("rt_follower", self.thread.id)
        [attachment] = answer["data"]["ir.attachment"]
        record = self.env["ir.attachment"].browse(attachment["id"])
        self.assertEqual((record.create_uid, record.res_model, record.raw), (self.follower, "mail.compose.message",
                                                                              b"a hat"))
        comment = self.thread.with_user(self.follower).fal_realtime_comment("a hat", attachment_ids=record.ids)
        self.assertEqual(comment.attachment_ids, record)
        self.assertIn("error", self.upload("rt_stranger", self.thread.id))
        self.assertIn("error", self.upload("rt_owner", self.plain_thread.id))
        self.assertIn("error", self.upload("rt_owner", self.thread.id, model="res.partner"))
        self.assertIn("error", self.upload("rt_owner", "1; drop"))

    def test_only_fresh_uploads_of_the_sender_are_attached(self):
        """A comment cannot carry someone else's file, nor one already attached elsewhere."""
        others = self.env["ir.attachment"].with_user(self.owner).create({
            "name": "owner.txt", "raw": b"x", "res_model": "mail.compose.message", "res_id": 0})
        with self.assertRaisesRegex(UserError, "Only files you have just attached"):
            self.thread.with_user(self.follower).fal_realtime_comment("look", attachment_ids=others.ids)


@tagged("post_install", "-at_install")
class TestConnectionFirstClick(RoomCase):
    def test_the_first_click_on_test_connection_is_heard(self):
        """Typing the secret and pressing Test connection at once tests it (the hint that appears moves nothing)."""
        self.require_relay()
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.shared_secret", False)
        result = self.run_browsers("test_connection_first_click", ["admin"], secret=self.secret)
        self.assertEqual(result["ok"], "1", result)
