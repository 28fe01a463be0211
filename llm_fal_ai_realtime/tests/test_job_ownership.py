"""A colleague cannot reach into someone else's generation jobs, over JSON-RPC, XML-RPC or in the browser.

The owner's Render final is really submitted (to ``fal_client.submit``'s stand-in) and running; a
second ordinary employee then tries what used to be open: clear its Render-final mark, make a
job of their own point at the owner's thread, mark it completed, and send an unsigned result.
"""

import json
import xmlrpc.client
from unittest.mock import patch

import fal_client

from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import browser_test_script
from .loopback_fal import signed_headers
from .test_render_final_webhook import IMAGE_PATH, JOB_LOGGER, RenderFinalResultCase

ACCESS_LOGGER = "odoo.addons.llm_fal_ai_realtime.models.llm_generation_job_access"
SEED_ROUTE_LOGGER = "odoo.addons.llm_fal_ai_realtime.controllers.webhook"

# Runs in the colleague's Odoo page: the same attempts, through the web client's own ORM service.
COLLEAGUE_SCRIPT = browser_test_script("colleague's attempts", """
        const orm = odoo.__WOWL_DEBUG__.root.env.services.orm;
        async function refused(what, call, expected) {
            try {
                await call();
            } catch (error) {
                const message = error.data?.message || error.message || "";
                if (!message.includes(expected)) {
                    throw new Error(what + ": refused, but not saying '" + expected + "': " + message);
                }
                return;
            }
            throw new Error(what + " was not refused");
        }
        await refused("clearing the Render-final mark",
            () => orm.write("llm.generation.job", [%(job_id)s], { fal_realtime_final: false }),
            "Only Odoo itself sets these fields");
        await refused("a job posting into the owner's thread",
            () => orm.create("llm.generation.job", [{ thread_id: %(thread_id)s, external_job_id: "{}" }]),
            "Only Odoo itself sets these fields");
        const forged = await fetch("/llm/generate_job/webhook/%(job_id)s", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ jsonrpc: "2.0", method: "call", params: {
                status: "OK", payload: { images: [{ url: "https://attacker.invalid/phish.png" }] } } }),
        }).then((response) => response.json());
        if (forged.result?.status !== "error") {
            throw new Error("an unsigned result from the colleague's session was taken: " + JSON.stringify(forged));
        }
        const seen = await orm.searchRead("llm.generation.job", [], ["id"]);
        if (seen.some((job) => job.id === %(job_id)s)) {
            throw new Error("the colleague sees the owner's job");
        }
""")


def call_kw(model, method, args, kwargs=None):
    return {"model": model, "method": method, "args": args, "kwargs": kwargs or {}}


@tagged("post_install", "-at_install")
class TestJobsAreTheServers(RenderFinalResultCase):
    def rpc(self, login, model, method, args, kwargs=None):
        """Call ``model.method`` over JSON-RPC as ``login``; the decoded answer."""
        self.authenticate(login, login)
        with mute_logger(ACCESS_LOGGER, "odoo.http"):
            return self.jsonrpc(f"/web/dataset/call_kw/{model}/{method}", call_kw(model, method, args, kwargs))

    def assertNothingPosted(self, job):
        """The owner's job still waits for fal, and nothing was posted as the assistant or fetched."""
        job.invalidate_recordset()
        self.assertUnchanged(job)
        self.assertTrue(job.fal_realtime_final and job.fal_realtime_webhook)

    def test_colleague_cannot_clear_the_render_final_mark_nor_send_an_unsigned_result(self):
        """The forged-result attack: clearing the Render-final mark is refused, and the open route takes nothing."""
        job, _call = self.render()
        for values in ({"fal_realtime_final": False}, {"fal_realtime_webhook": False},
                       {"external_job_id": json.dumps({"request_id": "attacker-1"})}, {"state": "completed"}):
            answer = self.rpc("rt_stranger", "llm.generation.job", "write", [[job.id], values])
            self.assertRpcError(answer, "odoo.exceptions.AccessError", "Only Odoo itself sets these fields")
        self.logout()
        forged = {"status": "OK", "payload": {"images": [{"url": "https://attacker.invalid/phish.png",
                                                          "content_type": "image/png"}]}}
        with self.assertLogs(SEED_ROUTE_LOGGER, level="WARNING") as logs:
            response = self.url_open(f"/llm/generate_job/webhook/{job.id}", data=json.dumps(forged),
                                     headers={"Content-Type": "application/json"})
        self.assertEqual(response.json()["result"]["status"], "error")
        self.assertEqual(len(logs.output), 1, "one line per refusal")
        self.assertTrue(logs.output[0].startswith("WARNING:"), logs.output)
        self.assertNotIn("attacker.invalid", logs.output[0])
        self.assertNothingPosted(job)

    def test_even_the_owner_cannot_rewrite_what_the_server_decided(self):
        """The job's owner cannot repoint or complete it either; the form's Cancel still works for them."""
        job, _call = self.render()
        answer = self.rpc("rt_owner", "llm.generation.job", "write", [[job.id], {"thread_id": self.plain_thread.id}])
        self.assertRpcError(answer, "odoo.exceptions.AccessError", "thread_id")
        answer = self.rpc("rt_owner", "llm.generation.job", "action_complete", [[job.id]])
        self.assertRpcError(answer, "odoo.exceptions.AccessError", "Only Odoo itself marks a generation job")
        self.assertNothingPosted(job)
        answer = self.rpc("rt_stranger", "llm.generation.job", "action_cancel", [[job.id]])
        self.assertRpcError(answer, "odoo.exceptions.AccessError", "")
        job.invalidate_recordset()
        self.assertEqual(job.state, "running", "a colleague cannot cancel it")
        answer = self.rpc("rt_owner", "llm.generation.job", "action_cancel", [[job.id]])
        self.assertNotIn("error", answer)
        job.invalidate_recordset()
        self.assertEqual(job.state, "cancelled")

    def test_colleague_cannot_make_a_job_post_into_someone_elses_thread(self):
        """A job of the colleague's own naming the owner's thread is refused, and the poll posts nothing."""
        job, _call = self.render()
        values = {"thread_id": self.lcm_thread.id, "state": "running", "fal_realtime_final": False,
                  "external_job_id": json.dumps({"request_id": "attacker-2", "status": "queued"})}
        answer = self.rpc("rt_stranger", "llm.generation.job", "create", [values])
        self.assertRpcError(answer, "odoo.exceptions.AccessError", "Only Odoo itself sets these fields")
        answer = self.rpc("rt_stranger", "llm.generation.job", "create", [{"thread_id": self.lcm_thread.id}])
        self.assertRpcError(answer, "odoo.exceptions.AccessError", "thread_id")
        self.assertEqual(self.env["llm.generation.job"].search([("thread_id", "=", self.lcm_thread.id)]), job)
        payload = {"images": [{"url": "https://attacker.invalid/phish.png", "content_type": "image/png"}]}
        with patch.object(fal_client, "status", lambda *args, **kwargs: fal_client.InProgress(logs=None)), \
                patch.object(fal_client, "result", lambda *args, **kwargs: payload):
            self.env["llm.generation.queue"]._check_job_statuses()
        self.assertNothingPosted(job)

    def test_colleague_sees_no_job_over_xmlrpc(self):
        """Over XML-RPC the colleague finds none of the owner's jobs, and cannot write one."""
        job, _call = self.render()
        db = self.env.cr.dbname
        uid = self.stranger.id
        found = self.xmlrpc_object.execute_kw(db, uid, "rt_stranger", "llm.generation.job", "search", [[]])
        self.assertNotIn(job.id, found)
        with mute_logger(ACCESS_LOGGER, "odoo.http"), self.assertRaisesRegex(xmlrpc.client.Fault,
                                                                            "Only Odoo itself sets these fields"):
            self.xmlrpc_object.execute_kw(db, uid, "rt_stranger", "llm.generation.job", "write",
                                          [[job.id], {"fal_realtime_final": False}])
        owner_sees = self.xmlrpc_object.execute_kw(db, self.owner.id, "rt_owner", "llm.generation.job", "search",
                                                   [[]])
        self.assertIn(job.id, owner_sees, "the owner sees the jobs of their own threads")
        self.assertNothingPosted(job)

    def test_result_lands_only_into_the_thread_of_the_jobs_request(self):
        """A job whose request message belongs to another thread is failed on landing, and posts nothing."""
        job, _call = self.render()
        elsewhere = self.plain_thread.with_user(self.owner).message_post(body="elsewhere", llm_role="user")
        job.sudo().input_message_id = elsewhere
        body = self.result_body()
        with mute_logger(JOB_LOGGER):
            status, _answer = self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))
        self.assertEqual(status, 200)
        self.assertEqual(job.state, "failed")
        self.assertIn("not a message of its conversation", job.error_message)
        self.assertFalse(self.lcm_thread.message_ids.filtered(lambda message: message.llm_role == "assistant"))
        self.assertFalse(self.plain_thread.message_ids.filtered(lambda message: message.llm_role == "assistant"))
        self.assertEqual(self.fal.count(IMAGE_PATH), 0)

    def test_colleague_in_the_browser(self):
        """In the colleague's own web client: each attempt refused (an unsigned result too), the owner's job unseen."""
        self.require_relay()
        job, _call = self.render()
        code = COLLEAGUE_SCRIPT % {"job_id": job.id, "thread_id": self.lcm_thread.id}
        with mute_logger(ACCESS_LOGGER, SEED_ROUTE_LOGGER):
            self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_stranger", timeout=90)
        self.assertNothingPosted(job)

    def test_job_views_offer_no_edit_the_server_refuses(self):
        """The job views open read-only and create nothing; their buttons stay."""
        views = self.env["llm.generation.job"].with_user(self.owner).get_views([(False, "form"), (False, "list"),
                                                                                (False, "kanban")])["views"]
        self.assertIn('edit="0"', views["form"]["arch"])
        self.assertIn('name="action_cancel"', views["form"]["arch"])
        for kind in ("form", "list", "kanban"):
            self.assertIn('create="0"', views[kind]["arch"], kind)

