"""Every fal.ai job is verified: an ordinary image job of a plain chat takes no result from the open route.

The job is made the way llm_generate_job makes one from a chat message, and started, so llm_fal_ai's
submission (through this addon) hands ``fal_client.submit``'s stand-in its webhook URL. Deliveries
come as an anonymous client would send them, without a session.
"""

import json
from unittest.mock import patch

import fal_client

from odoo.tests import tagged
from odoo.tools import mute_logger

from .loopback_fal import JWKS_PATH, signed_headers
from .test_render_final import SEED_LOGGERS, FalQueue
from .test_render_final_webhook import RenderFinalResultCase

SEED_ROUTE_LOGGER = "odoo.addons.llm_fal_ai_realtime.controllers.webhook"


@tagged("post_install", "-at_install")
class TestEveryFalJobVerified(RenderFinalResultCase):
    def start_plain_job(self):
        """The owner's plain fal chat: a message, its job, started; fal's queue answers ``request-1``."""
        message = self.plain_thread.with_user(self.owner).message_post(body="a red bicycle", llm_role="user",
                                                                        body_json={"prompt": "a red bicycle"})
        job = self.plain_thread.with_user(self.owner)._create_generation_job_from_message(message)
        job.write({"state": "queued"})
        queue = FalQueue()
        with patch.object(fal_client, "submit", queue.submit), mute_logger(*SEED_LOGGERS):
            job.action_start()
        self.assertEqual((job.state, len(queue.calls)), ("running", 1))
        return job, queue.calls[0]

    def plain_answers(self):
        return self.plain_thread.message_ids.filtered(lambda message: message.llm_role == "assistant")

    def test_ordinary_fal_job_is_submitted_with_the_verified_webhook(self):
        """Not only Render final: llm_fal_ai's ordinary jobs get this addon's signed webhook, not the open route."""
        job, call = self.start_plain_job()
        self.assertFalse(job.fal_realtime_final)
        self.assertTrue(job.fal_realtime_webhook)
        self.assertEqual(call["webhook_url"], f"http://odoo.test/llm_fal_ai_realtime/final/{job.id}/webhook")
        self.assertEqual(call["arguments"]["prompt"], "a red bicycle")

    def test_open_route_takes_no_result_for_any_fal_job(self):
        """An anonymous forged result on llm_fal_ai's route is refused in one warning line; nothing is posted."""
        job, _call = self.start_plain_job()
        forged = {"status": "OK", "payload": {"images": [{"url": "https://attacker.invalid/phish.png",
                                                          "content_type": "image/png"}]}}
        for job_id in (job.id, job.id + 1000):  # the job, and an id that is no job at all
            with self.assertLogs(level="WARNING") as logs:
                response = self.url_open(f"/llm/generate_job/webhook/{job_id}", data=json.dumps(forged),
                                         headers={"Content-Type": "application/json"})
            self.assertEqual(response.json()["result"]["status"], "error")
            self.assertEqual([line.split(":")[0] for line in logs.output], ["WARNING"], logs.output)
            self.assertIn("unsigned webhook refused", logs.output[0])
        job.invalidate_recordset()
        self.assertEqual(job.state, "running")
        self.assertFalse(self.plain_answers())

    def test_signed_delivery_lands_an_ordinary_fal_job_once(self):
        """fal's signed delivery completes the ordinary job through llm_fal_ai's processing, once."""
        job, _call = self.start_plain_job()
        body = self.result_body()
        forged = json.dumps({"request_id": "request-1", "status": "OK",
                             "payload": {"images": [{"url": "https://attacker.invalid/phish.png"}]}}).encode()
        response = self.url_open(f"/llm_fal_ai_realtime/final/{job.id}/webhook", data=forged,
                                 headers={"Content-Type": "application/json"})
        self.assertEqual(response.status_code, 401, "unsigned on the verified route too")
        self.assertFalse(self.plain_answers())
        for expected in ("accepted", "ignored"):
            response = self.url_open(f"/llm_fal_ai_realtime/final/{job.id}/webhook", data=body,
                                     headers=signed_headers(self.fal_key, "request-1", body))
            self.assertEqual((response.status_code, response.json()), (200, {"status": expected}))
        job.invalidate_recordset()
        self.plain_thread.invalidate_recordset()
        self.assertEqual(job.state, "completed")
        answer = self.plain_answers()
        self.assertEqual(len(answer), 1)
        self.assertEqual(job.output_message_id, answer)
        self.assertEqual(answer.attachment_ids.url, self.fal.url("/files/final.png"))
        self.assertEqual(self.fal.count(JWKS_PATH), 1)

    def test_ordinary_job_polled_without_a_webhook_when_polling_is_chosen(self):
        """With polling chosen, ordinary fal jobs get no webhook either, and the status cron lands them."""
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.final_results", "polling")
        job, call = self.start_plain_job()
        self.assertNotIn("webhook_url", call)
        self.assertFalse(job.fal_realtime_webhook)
        payload = json.loads(self.result_body())["payload"]
        with patch.object(fal_client, "status", lambda *args, **kwargs: fal_client.Completed(logs=None, metrics={})), \
                patch.object(fal_client, "result", lambda *args, **kwargs: payload), mute_logger(*SEED_LOGGERS):
            self.env["llm.generation.queue"]._check_job_statuses()
        job.invalidate_recordset()
        self.assertEqual(job.state, "completed")
        self.assertEqual(len(self.plain_answers()), 1)

    def test_jobs_of_other_providers_keep_the_open_route(self):
        """A job of another service (one a module would add) is left to llm_fal_ai's route as before."""
        job, _call = self.start_plain_job()
        other = self.env["llm.provider"].create({"name": "another service", "service": "fal_ai", "api_key": "x"})
        self.env.cr.execute("UPDATE llm_provider SET service = 'another' WHERE id = %s", [other.id])
        other.invalidate_recordset()
        job.sudo().provider_id = other
        result = {"status": "OK", "payload": {"images": [{"url": "https://example.invalid/x.png",
                                                          "content_type": "image/png"}]}}
        with mute_logger("odoo.addons.llm_fal_ai.controllers.webhook_controller"):
            response = self.url_open(f"/llm/generate_job/webhook/{job.id}", data=json.dumps(result),
                                     headers={"Content-Type": "application/json"})
        job.invalidate_recordset()
        self.assertEqual(response.json()["result"]["status"], "success")
        self.assertEqual(job.state, "completed")
