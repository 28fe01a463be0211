"""Render final's results: only fal's signed deliveries, once, with the image kept in Odoo.

A locally generated ED25519 key set stands in for fal's, served with the final image from an HTTP
server on 127.0.0.1 (``loopback_fal``); ``fal_client.submit``/``status``/``result`` stand in for
fal's queue. Deliveries go to Odoo's own test server as fal would send them, without a session.
"""

import json
import time
from datetime import timedelta
from unittest.mock import patch

import fal_client
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.llm_fal_ai_realtime.models.llm_generation_job import (
    PARAM_FINAL_RESULTS,
    PARAM_TEST_LOOPBACK_IMAGES,
    PARAM_WEBHOOK_JWKS_URL,
)
from odoo.addons.llm_fal_ai_realtime.tools import fal_webhook, image_fetch

from .common import FalRealtimeCase, browser_test_script
from .loopback_fal import JWKS_PATH, LoopbackFal, png_bytes, signed_headers
from .test_render_final import SEED_LOGGERS, FalQueue

RENDER = "/llm_fal_ai_realtime/render_final"
IMAGE_PATH = "/files/final.png"
JOB_LOGGER = "odoo.addons.llm_fal_ai_realtime.models.llm_generation_job"

# Runs in the Odoo page: the owner opens the thread and sees the final image, served by Odoo.
KEPT_IMAGE_SCRIPT = browser_test_script("render final result", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const image = await waitFor("the final image, loaded", () => {
            const img = [...document.querySelectorAll(".o-mail-Message .o-mail-AttachmentImage img")]
                .find((el) => el.closest(".o-mail-Message").textContent.includes("Rendered at full quality"));
            return img && img.complete && img.naturalWidth > 0 && img;
        });
        if (!image.src.includes("/web/image/%(attachment_id)s")) {
            throw new Error("the image must be Odoo's stored copy, not " + image.src);
        }
        const message = image.closest(".o-mail-Message");
        if (!message.textContent.includes("a lighthouse at dusk") || !message.textContent.includes("seed 1234")) {
            throw new Error("the answer must carry the prompt and seed: " + message.textContent);
        }
        if ([...document.querySelectorAll(".o-mail-Message img")].some((el) => el.src.startsWith(%(fal_origin)s))) {
            throw new Error("no image may be loaded from fal's URL");
        }
        await waitFor("the thread's live canvas beside it", () => document.querySelector(".o_live_canvas"));
""")


class RenderFinalResultCase(FalRealtimeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fal = LoopbackFal()
        cls.addClassCleanup(cls.fal.close)
        cls.fal_key = Ed25519PrivateKey.generate()
        cls.image = png_bytes()
        cls.fal.files[IMAGE_PATH] = ("image/png", cls.image)
        cls.fal.files["/files/page.png"] = ("text/html", b"<html>not an image</html>")
        cls.fal.files["/files/liar.png"] = ("image/png", b"<svg onload=alert(1)>")
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param(PARAM_WEBHOOK_JWKS_URL, cls.fal.url(JWKS_PATH))
        params.set_param(PARAM_TEST_LOOPBACK_IMAGES, "1")  # fal's media host stands in on 127.0.0.1

    def setUp(self):
        super().setUp()
        self.fal.publish(**{"fal-1": self.fal_key})
        self.fal.hits.clear()
        key_sets = fal_webhook.KeySetCache(cooldown=0)  # a fresh cache per test; refresh allowed at once
        patcher = patch.object(fal_webhook, "KEY_SETS", key_sets)
        patcher.start()
        self.addCleanup(patcher.stop)

    def render(self, seed=1234):
        """Render final in the LCM thread as its owner; fal's queue answers ``request-1``."""
        queue = FalQueue()
        self.authenticate("rt_owner", "rt_owner")
        with patch.object(fal_client, "submit", queue.submit), mute_logger(*SEED_LOGGERS):
            result = self.jsonrpc(RENDER, {"thread_id": self.lcm_thread.id, "prompt": "a lighthouse at dusk",
                                           "seed": seed})["result"]
        self.logout()
        job = self.env["llm.generation.job"].browse(result["job_id"])
        self.assertEqual((job.state, len(queue.calls)), ("running", 1))
        return job, queue.calls[0]

    def result_body(self, request_id="request-1", path=IMAGE_PATH, status="OK"):
        if status == "ERROR":
            return json.dumps({"request_id": request_id, "status": "ERROR", "error": "Invalid status code: 422",
                               "payload": {"detail": "prompt must be non-empty"}}).encode()
        return json.dumps({"request_id": request_id, "gateway_request_id": request_id, "status": "OK",
                           "payload": {"images": [{"url": self.fal.url(path), "content_type": "image/png",
                                                   "width": 96, "height": 64}], "seed": 1234}}).encode()

    def deliver(self, job, body, headers):
        """POST a delivery to the job's webhook on Odoo's test server; the decoded answer and its status."""
        response = self.url_open(f"/llm_fal_ai_realtime/final/{job.id}/webhook", data=body, headers=headers)
        job.invalidate_recordset()
        self.lcm_thread.invalidate_recordset()
        return response.status_code, response.json()

    def assertUnchanged(self, job):
        """The job still waits for fal, and the thread has no answer and no image."""
        self.assertEqual(job.state, "running")
        self.assertFalse(job.output_message_id)
        self.assertFalse(self.lcm_thread.message_ids.filtered(lambda message: message.llm_role == "assistant"))
        self.assertFalse(self.lcm_thread.message_ids.attachment_ids)
        self.assertEqual(self.fal.count(IMAGE_PATH), 0, "nothing was fetched for it")

    def assertKept(self, job):
        """The job completed with one assistant message holding the image as a binary attachment."""
        self.assertEqual(job.state, "completed")
        message = job.output_message_id
        self.assertEqual((message.llm_role, message.model, message.res_id), ("assistant", "llm.thread",
                                                                             self.lcm_thread.id))
        attachment = message.attachment_ids
        self.assertEqual(len(attachment), 1)
        self.assertEqual((attachment.type, attachment.url, attachment.mimetype), ("binary", False, "image/png"))
        self.assertEqual(attachment.raw, self.image)
        self.assertEqual((attachment.res_model, attachment.res_id), ("llm.thread", self.lcm_thread.id))
        self.assertIn("a lighthouse at dusk", str(message.body))
        self.assertIn("seed 1234", str(message.body))
        self.assertIn("fal-ai/fast-lcm-diffusion", str(message.body))
        self.assertEqual(message.body_json, {"prompt": "a lighthouse at dusk", "seed": 1234,
                                             "model": "fal-ai/fast-lcm-diffusion", "request_id": "request-1"})
        self.assertNotIn("127.0.0.1", str(message.body), "the message shows the stored copy, not fal's URL")
        self.assertEqual(self.fal.count(IMAGE_PATH), 1, "fetched once")
        return message


@tagged("post_install", "-at_install")
class TestRenderFinalWebhook(RenderFinalResultCase):
    def test_signed_delivery_completes_the_job_and_posts_the_kept_image(self):
        """fal's signed delivery for the job's request: the image is fetched once and kept beside the message."""
        job, call = self.render()
        self.assertEqual(call["webhook_url"], f"http://odoo.test/llm_fal_ai_realtime/final/{job.id}/webhook")
        self.assertTrue(job.fal_realtime_final and job.fal_realtime_webhook)
        body = self.result_body()
        status, answer = self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))
        self.assertEqual((status, answer), (200, {"status": "accepted"}))
        message = self.assertKept(job)
        self.assertEqual(len(self.lcm_thread.message_ids.filtered(lambda m: m.llm_role == "assistant")), 1)
        self.assertEqual(message.author_id, self.env["res.partner"], "posted as the model, not as a person")

    def test_forged_and_unsigned_deliveries_change_nothing_and_are_logged_without_their_body(self):
        """The forged result of issue 18 (no signature, or a made-up one) is refused; its body is never logged."""
        job, _call = self.render()
        forged = json.dumps({"request_id": "request-1", "status": "OK",
                             "payload": {"images": [{"url": "https://attacker.invalid/phish.png"}]}}).encode()
        made_up = signed_headers(self.fal_key, "request-1", forged)
        made_up["X-Fal-Webhook-Signature"] = "ab" * 64
        tampered = signed_headers(self.fal_key, "request-1", self.result_body())  # signed for another body
        for headers in ({"Content-Type": "application/json"}, made_up, tampered):
            with self.assertLogs(JOB_LOGGER, level="INFO") as logs:
                status, answer = self.deliver(job, forged, headers)
            self.assertEqual((status, answer), (401, {"status": "refused"}))
            self.assertIn("fal webhook refused", "\n".join(logs.output))
            self.assertNotIn("attacker.invalid", "\n".join(logs.output))
            self.assertUnchanged(job)

    def test_delivery_signed_with_another_key_changes_nothing(self):
        """A delivery re-signed with a key fal does not publish is refused after one refetch of fal's keys."""
        job, _call = self.render()
        body = self.result_body()
        status, _answer = self.deliver(job, body, signed_headers(Ed25519PrivateKey.generate(), "request-1", body))
        self.assertEqual(status, 401)
        self.assertEqual(self.fal.count(JWKS_PATH), 2, "an unknown signer makes the key set be fetched again")
        self.assertUnchanged(job)

    def test_replayed_delivery_with_an_old_timestamp_changes_nothing(self):
        """A genuine signature on a timestamp outside the replay window is refused, and so is one from the future."""
        job, _call = self.render()
        body = self.result_body()
        for timestamp in (int(time.time()) - 3600, int(time.time()) + 3600):
            status, _answer = self.deliver(job, body, signed_headers(self.fal_key, "request-1", body, timestamp))
            self.assertEqual(status, 401)
        self.assertUnchanged(job)

    def test_delivery_for_another_request_changes_nothing(self):
        """fal's genuine delivery for some other request (say, the attacker's own fal job) is refused."""
        job, _call = self.render()
        other = self.result_body(request_id="request-999")
        status, _answer = self.deliver(job, other, signed_headers(self.fal_key, "request-999", other))
        self.assertEqual(status, 403)
        mismatched = self.result_body(request_id="request-999")  # signed header right, body names another
        status, _answer = self.deliver(job, mismatched, signed_headers(self.fal_key, "request-1", mismatched))
        self.assertEqual(status, 403)
        self.assertUnchanged(job)

    def test_second_delivery_changes_nothing(self):
        """A result lands once: a completed job ignores a second delivery, even a genuine one."""
        job, _call = self.render()
        body = self.result_body()
        self.assertEqual(self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))[0], 200)
        message = self.assertKept(job)
        status, answer = self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))
        self.assertEqual((status, answer), (200, {"status": "ignored"}), "fal must not retry it")
        self.assertEqual(job.output_message_id, message)
        self.assertEqual(len(self.lcm_thread.message_ids.filtered(lambda m: m.llm_role == "assistant")), 1)
        self.assertEqual(len(self.lcm_thread.message_ids.attachment_ids), 1)
        self.assertEqual(self.fal.count(IMAGE_PATH), 1, "the image is not fetched again")

    def test_failed_job_ignores_further_deliveries(self):
        """fal's signed error fails the job and says why in the thread; a later success does not land."""
        job, _call = self.render()
        error = self.result_body(status="ERROR")
        self.assertEqual(self.deliver(job, error, signed_headers(self.fal_key, "request-1", error))[0], 200)
        self.assertEqual(job.state, "failed")
        self.assertIn("Invalid status code: 422", job.error_message)
        self.assertIn("Render final failed", str(job.output_message_id.body))
        body = self.result_body()
        status, answer = self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))
        self.assertEqual((status, answer), (200, {"status": "ignored"}))
        self.assertEqual(job.state, "failed")
        self.assertFalse(self.lcm_thread.message_ids.attachment_ids)
        self.assertEqual(self.fal.count(IMAGE_PATH), 0)

    def test_rotated_key_is_fetched_when_a_delivery_needs_it(self):
        """fal's keys are cached; a delivery signed with a newly published key makes the cache refresh once."""
        job, _call = self.render()
        self.assertEqual(self.deliver(job, b"{}", signed_headers(self.fal_key, "request-1", b"{}"))[0], 400)
        self.assertEqual(self.fal.count(JWKS_PATH), 1, "the first delivery fetched the keys")
        rotated = Ed25519PrivateKey.generate()
        self.fal.publish(**{"fal-2": rotated})
        body = self.result_body()
        self.assertEqual(self.deliver(job, body, signed_headers(rotated, "request-1", body))[0], 200)
        self.assertEqual(self.fal.count(JWKS_PATH), 2)
        self.assertKept(job)

    def test_keys_cached_between_deliveries(self):
        """Known keys are not fetched again for each delivery."""
        job, _call = self.render()
        for _attempt in range(3):
            self.deliver(job, b"{}", signed_headers(self.fal_key, "request-1", b"{}"))
        self.assertEqual(self.fal.count(JWKS_PATH), 1)

    def test_unreachable_key_set_changes_nothing_and_asks_fal_to_retry(self):
        """Without fal's keys nothing can be verified: the answer is 503, which fal retries."""
        job, _call = self.render()
        self.env["ir.config_parameter"].sudo().set_param(PARAM_WEBHOOK_JWKS_URL, self.fal.url("/no-such-keys"))
        body = self.result_body()
        status, answer = self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))
        self.assertEqual((status, answer), (503, {"status": "retry"}))
        self.assertUnchanged(job)

    def test_image_that_is_not_an_image_fails_the_job(self):
        """Only image content types are kept, and the bytes must be the image they claim; else the job fails."""
        for path, reason in (("/files/page.png", "text/html, not an image"), ("/files/liar.png", "not the image/png")):
            job, _call = self.render()
            body = self.result_body(path=path)
            self.assertEqual(self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))[0], 200)
            self.assertEqual(job.state, "failed")
            self.assertIn(reason, job.error_message)
            self.assertFalse(self.lcm_thread.message_ids.attachment_ids)

    def test_image_over_the_size_cap_fails_the_job(self):
        """An image larger than the cap is not kept."""
        job, _call = self.render()
        body = self.result_body()
        with patch.object(image_fetch, "MAX_IMAGE_BYTES", len(self.image) - 1):
            self.assertEqual(self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))[0], 200)
        self.assertEqual(job.state, "failed")
        self.assertIn("larger than", job.error_message)
        self.assertFalse(self.lcm_thread.message_ids.attachment_ids)

    def test_oversized_delivery_is_refused_unread(self):
        """A delivery larger than a result can be (1 MiB) is refused before it is read or verified."""
        job, _call = self.render()
        body = b'{"status": "OK", "pad": "' + b"x" * (1024 * 1024) + b'"}'
        response = self.url_open(f"/llm_fal_ai_realtime/final/{job.id}/webhook", data=body,
                                 headers=signed_headers(self.fal_key, "request-1", body))
        job.invalidate_recordset()
        self.assertEqual(response.status_code, 413)
        self.assertEqual(self.fal.count(JWKS_PATH), 0)
        self.assertUnchanged(job)

    def test_open_seed_route_refuses_render_final_jobs(self):
        """llm_generate_job's unsigned route no longer completes render-final jobs: the forged request of issue 18."""
        job, _call = self.render()
        forged = {"status": "OK", "payload": {"images": [{"url": "https://attacker.invalid/phish.png"}]}}
        with mute_logger("odoo.addons.llm_fal_ai.controllers.webhook_controller"):
            response = self.url_open(f"/llm/generate_job/webhook/{job.id}", data=json.dumps(forged),
                                     headers={"Content-Type": "application/json"})
        job.invalidate_recordset()
        self.assertEqual(response.json()["result"]["status"], "error")
        self.assertUnchanged(job)


@tagged("post_install", "-at_install")
class TestRenderFinalPolling(RenderFinalResultCase):
    def poll(self, status, result=None):
        """Run llm_generate_job's status cron with fal's status (and result) answering as given."""
        with patch.object(fal_client, "status", lambda application, request_id, **kw: status), \
                patch.object(fal_client, "result", lambda application, request_id: result):
            self.env["llm.generation.queue"]._check_job_statuses()

    def test_polling_only_passes_no_webhook_and_completes_the_job(self):
        """With polling chosen, fal gets no webhook at all; the status cron lands the result and keeps the image."""
        self.env["ir.config_parameter"].sudo().set_param(PARAM_FINAL_RESULTS, "polling")
        job, call = self.render()
        self.assertNotIn("webhook_url", call, "no webhook at all")
        self.assertFalse(job.fal_realtime_webhook)
        self.poll(fal_client.InProgress(logs=None))
        self.assertEqual(job.state, "running")
        payload = json.loads(self.result_body())["payload"]
        self.poll(fal_client.Completed(logs=None, metrics={}), payload)
        job.invalidate_recordset()
        self.assertKept(job)
        self.poll(fal_client.Completed(logs=None, metrics={}), payload)  # a job no longer running is not polled
        self.assertEqual(self.fal.count(IMAGE_PATH), 1)
        body = self.result_body()
        status, _answer = self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))
        self.assertEqual(status, 404, "a job given no webhook takes no delivery")

    def test_polling_records_fals_error(self):
        """A request fal completed with an error fails the job with fal's reason."""
        job, _call = self.render()
        self.poll(fal_client.Completed(logs=None, metrics={}, error="Out of memory", error_type="runner"))
        job.invalidate_recordset()
        self.assertEqual(job.state, "failed")
        self.assertIn("Out of memory", job.error_message)

    def test_polling_and_webhook_land_once(self):
        """When polling lands the result first, fal's later delivery is ignored."""
        job, _call = self.render()
        self.poll(fal_client.Completed(logs=None, metrics={}), json.loads(self.result_body())["payload"])
        job.invalidate_recordset()
        message = self.assertKept(job)
        body = self.result_body()
        self.assertEqual(self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))[1],
                         {"status": "ignored"})
        self.assertEqual(job.output_message_id, message)
        self.assertEqual(self.fal.count(IMAGE_PATH), 1)

    def test_polling_without_verification_configured(self):
        """Without a key-set URL or a base URL, no delivery could be verified or reach Odoo: fal gets no webhook."""
        params = self.env["ir.config_parameter"].sudo()
        params.set_param(PARAM_WEBHOOK_JWKS_URL, " ")
        job, call = self.render()
        self.assertNotIn("webhook_url", call)
        self.assertFalse(job.fal_realtime_webhook)
        params.set_param(PARAM_WEBHOOK_JWKS_URL, self.fal.url(JWKS_PATH))
        params.set_param("web.base.url", "")
        _job, call = self.render(seed=5)
        self.assertNotIn("webhook_url", call)

    def test_polling_survives_passing_errors_and_gives_up_after_the_timeout(self):
        """fal's status failing is not the job failing; a job fal never finishes fails after 30 minutes."""
        job, _call = self.render()

        def unreachable(application, request_id, **kwargs):
            raise ConnectionError("[Errno 111] Connection refused")

        with patch.object(fal_client, "status", unreachable), mute_logger(JOB_LOGGER):
            self.env["llm.generation.queue"]._check_job_statuses()
        self.assertEqual(job.state, "running", "still running, and never moved back to queued")
        job.started_at = fields.Datetime.now() - timedelta(minutes=31)
        self.poll(fal_client.Queued(position=3))
        job.invalidate_recordset()
        self.assertEqual(job.state, "failed")
        self.assertIn("did not finish within 30 minutes", job.error_message)
        self.assertIn("Render final failed", str(job.output_message_id.body))

    def test_settings_choose_polling_and_the_key_set(self):
        """An administrator picks polling or the webhook and its key-set URL; a key set must be an http(s) URL."""
        params = self.env["ir.config_parameter"].sudo()
        params.set_param(PARAM_WEBHOOK_JWKS_URL, False)
        settings = self.env["res.config.settings"].create({})
        self.assertEqual((settings.fal_realtime_final_results, settings.fal_realtime_webhook_jwks_url),
                         ("webhook", "https://rest.alpha.fal.ai/.well-known/jwks.json"), "fal's own by default")
        self.env["res.config.settings"].create({"fal_realtime_final_results": "polling",
                                                "fal_realtime_webhook_jwks_url": self.fal.url(JWKS_PATH)}).execute()
        self.assertEqual((params.get_param(PARAM_FINAL_RESULTS), params.get_param(PARAM_WEBHOOK_JWKS_URL)),
                         ("polling", self.fal.url(JWKS_PATH)))
        with self.assertRaisesRegex(UserError, "must be an http"):
            self.env["res.config.settings"].create({"fal_realtime_webhook_jwks_url": "file:///etc/passwd"})


@tagged("post_install", "-at_install")
class TestRenderFinalResultInTheChat(RenderFinalResultCase):
    def test_the_chat_shows_the_kept_image(self):
        """After fal's signed delivery, the owner's chat shows the final image from Odoo's own copy."""
        self.require_relay()
        job, _call = self.render()
        body = self.result_body()
        self.assertEqual(self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))[0], 200)
        attachment = self.assertKept(job).attachment_ids
        code = KEPT_IMAGE_SCRIPT % {"thread_id": self.lcm_thread.id, "attachment_id": attachment.id,
                                    "fal_origin": json.dumps(self.fal.url("/"))}
        self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_owner", timeout=90)
        self.assertEqual(self.fal.count(IMAGE_PATH), 1, "showing it fetched nothing from fal")
