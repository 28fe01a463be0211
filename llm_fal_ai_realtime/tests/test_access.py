from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import FalRealtimeCase

ROUTE = "/llm_fal_ai_realtime/session"


@tagged("post_install", "-at_install")
class TestAccess(FalRealtimeCase):
    def test_stranger_gets_no_ticket(self):
        """A user who cannot read the thread gets no ticket for it."""
        self.authenticate("rt_stranger", "rt_stranger")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})
        self.assertRpcError(response, "odoo.exceptions.AccessError", "")
        self.assertNotIn("result", response)

    def test_followers_read_but_do_not_write(self):
        """The follower rule opens threads for reading only; strangers still see nothing."""
        Thread = self.env["llm.thread"]
        self.assertEqual(Thread.with_user(self.follower).search([("id", "=", self.thread.id)]), self.thread)
        self.assertFalse(Thread.with_user(self.follower).search([("id", "=", self.other_thread.id)]))
        self.assertFalse(Thread.with_user(self.stranger).search([("id", "=", self.thread.id)]))
        with self.assertRaises(AccessError):
            self.thread.with_user(self.follower).write({"name": "taken over"})
        with self.assertRaises(AccessError):
            self.thread.with_user(self.stranger).check_access("read")

    def test_other_company_provider_refused(self):
        """A realtime model of a provider in a company the user does not belong to gets no ticket."""
        other_company = self.env["res.company"].create({"name": "Realtime Other Co"})
        provider = self.env["llm.provider"].create({
            "name": "fal other company", "service": "fal_ai", "company_id": other_company.id,
        })
        model = self.env["llm.model"].create({
            "name": "local/preview", "provider_id": provider.id, "model_use": "image_generation",
            "realtime_app_id": "local/preview",
        })
        self.authenticate("rt_owner", "rt_owner")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": model.id})
        self.assertRpcError(response, "odoo.exceptions.AccessError", "company you do not work for")
        self.owner.sudo().write({"company_ids": [(4, other_company.id)]})
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": model.id})
        self.assertEqual(response["result"]["app"], "local/preview")

    def test_keep_refused_to_viewers_and_strangers(self):
        """Only who may post in the thread can keep a frame into it."""
        for login in ("rt_follower", "rt_stranger"):
            self.authenticate(login, login)
            response = self.jsonrpc("/llm_fal_ai_realtime/keep", {
                "thread_id": self.thread.id, "image": "/9j/4AAQ", "prompt": "x", "seed": 1})
            self.assertRpcError(response, "odoo.exceptions.AccessError", "")
        self.assertFalse(self.env["ir.attachment"].search([("res_model", "=", "llm.thread"),
                                                            ("res_id", "=", self.thread.id)]))
