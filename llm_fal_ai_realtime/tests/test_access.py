import base64

from odoo.exceptions import AccessError
from odoo.tests import tagged

from odoo.addons.llm_fal_ai_realtime.models.llm_provider import REALTIME_MODELS, realtime_model_details

from .common import FalRealtimeCase
from .test_keep import jpeg_bytes

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

    def test_keep_refused_to_viewers_and_strangers(self):
        """Only who may post in the thread can keep a frame into it."""
        for login in ("rt_follower", "rt_stranger"):
            self.authenticate(login, login)
            response = self.jsonrpc("/llm_fal_ai_realtime/keep", {
                "thread_id": self.thread.id, "image": "/9j/4AAQ", "prompt": "x", "seed": 1})
            self.assertRpcError(response, "odoo.exceptions.AccessError", "")
        self.assertFalse(self.env["ir.attachment"].search([("res_model", "=", "llm.thread"),
                                                            ("res_id", "=", self.thread.id)]))


@tagged("post_install", "-at_install")
class TestMultiCompany(FalRealtimeCase):
    """The owner works for two companies; a fal provider belongs to the second one.

    Only the companies active in the web client (``allowed_company_ids`` of its user context,
    which the chat sends with every call) count, not every company the user may work for.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.main_company = cls.owner.company_id
        cls.other_company = cls.env["res.company"].create({"name": "Realtime Other Co"})
        cls.owner.write({"company_ids": [(4, cls.other_company.id)]})
        provider = cls.env["llm.provider"].create({
            "name": "fal other company", "service": "fal_ai", "api_key": "unused", "company_id": cls.other_company.id,
        })
        app, description, final_steps = REALTIME_MODELS[0]
        cls.other_model = cls.env["llm.model"].create({
            "name": app, "provider_id": provider.id, "model_use": "image_generation",
            "details": realtime_model_details(app, description, final_steps),
        })
        cls.other_thread = cls.env["llm.thread"].with_user(cls.owner).create({
            "name": "Other company thread", "provider_id": provider.id, "model_id": cls.other_model.id,
        })
        cls.other_thread.sudo().message_subscribe(partner_ids=cls.follower.partner_id.ids)

    def active(self, *companies):
        return {"allowed_company_ids": [company.id for company in companies]}

    def test_ticket_only_for_models_of_active_companies(self):
        """A realtime model of a company the user works for but has not switched on gets no ticket."""
        self.authenticate("rt_owner", "rt_owner")
        params = {"thread_id": self.other_thread.id, "model_id": self.other_model.id}
        response = self.jsonrpc(ROUTE, dict(params, context=self.active(self.main_company)))
        self.assertRpcError(response, "odoo.exceptions.AccessError", "belongs to a company that is not active")
        response = self.jsonrpc(ROUTE, dict(params, context=self.active(self.main_company, self.other_company)))
        self.assertEqual(response["result"]["app"], self.other_model.realtime_app_id)

    def test_companies_the_user_does_not_work_for_are_refused(self):
        """Claiming a company one does not work for is refused by Odoo itself."""
        self.authenticate("rt_follower", "rt_follower")
        params = {"thread_id": self.other_thread.id, "model_id": self.other_model.id}
        response = self.jsonrpc(ROUTE, dict(params, context=self.active(self.other_company)))
        self.assertRpcError(response, "odoo.exceptions.AccessError", "unauthorized or invalid companies")
        response = self.jsonrpc(ROUTE, params)
        self.assertRpcError(response, "odoo.exceptions.AccessError", "belongs to a company that is not active")

    def test_keep_and_render_final_only_in_active_companies(self):
        """Keep and Render final into a thread whose model's provider is in an inactive company are refused."""
        self.authenticate("rt_owner", "rt_owner")
        image = base64.b64encode(jpeg_bytes()).decode()
        keep = {"thread_id": self.other_thread.id, "image": image, "prompt": "a fox", "seed": 1}
        final = {"thread_id": self.other_thread.id, "prompt": "a fox", "seed": 1}
        inactive = self.active(self.main_company)
        response = self.jsonrpc("/llm_fal_ai_realtime/keep", dict(keep, context=inactive))
        self.assertRpcError(response, "odoo.exceptions.AccessError", "belongs to a company that is not active")
        response = self.jsonrpc("/llm_fal_ai_realtime/render_final", dict(final, context=inactive))
        self.assertRpcError(response, "odoo.exceptions.AccessError", "belongs to a company that is not active")
        self.assertFalse(self.other_thread.message_ids.filtered("body_json"))
        self.assertFalse(self.env["llm.generation.job"].search([("thread_id", "=", self.other_thread.id)]))
        both = self.active(self.main_company, self.other_company)
        response = self.jsonrpc("/llm_fal_ai_realtime/keep", dict(keep, context=both))
        self.assertTrue(response["result"]["message_id"])

    def test_chat_offers_realtime_models_of_active_companies_only(self):
        """The chat's list of realtime models follows the company switcher."""
        Model = self.env["llm.model"].with_user(self.owner)
        main_only = Model.with_context(self.active(self.main_company)).fal_realtime_apps()
        self.assertNotIn(self.other_model.id, [entry["id"] for entry in main_only])
        self.assertIn(self.lcm_model.id, [entry["id"] for entry in main_only])
        both = Model.with_context(self.active(self.main_company, self.other_company)).fal_realtime_apps()
        self.assertIn({"id": self.other_model.id, "app": "fal-ai/fast-lcm-diffusion", "kind": "fal",
                       "label": "Realtime", "can_render_final": True}, both)
        preview = next(entry for entry in both if entry["id"] == self.preview_model.id)
        self.assertFalse(preview["can_render_final"], "the embedded preview app has no final render")
