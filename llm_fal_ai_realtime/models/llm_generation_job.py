"""fal.ai jobs' results: a result lands once, only from fal's signed webhook or from status polling.

llm_generate_job's own webhook route is public, CSRF-free, keyed by a sequential id and checks no
signature. While this addon is installed, llm_fal_ai submits every fal.ai job with this addon's
verified webhook route, or with none at all (polling only). Jobs of realtime threads are marked
(``fal_realtime_final``) when they are created: their results are recorded here, once, with the
image kept in Odoo; other fal.ai jobs land through llm_fal_ai's own processing, after the same checks.
"""

import json
import logging
from datetime import timedelta

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.modules import module as odoo_module

from ..tools.fal_webhook import FAL_JWKS_URL, KeySetUnavailable, WebhookRejected, verify_delivery
from ..tools.image_fetch import ImageFetchError, fetch_image
from .llm_thread import sniff_image

_logger = logging.getLogger(__name__)

PARAM_FINAL_RESULTS = "llm_fal_ai_realtime.final_results"
PARAM_WEBHOOK_JWKS_URL = "llm_fal_ai_realtime.webhook_jwks_url"
# Test-only: the addon's tests serve fal's media from 127.0.0.1, which the image fetch refuses.
# Honoured only while Odoo runs tests, and then only for loopback (never private or link-local).
PARAM_TEST_LOOPBACK_IMAGES = "llm_fal_ai_realtime.test_loopback_images"
RESULTS_WEBHOOK = "webhook"
RESULTS_POLLING = "polling"
WEBHOOK_ROUTE = "/llm_fal_ai_realtime/final/<int:job_id>/webhook"
MAX_FINAL_IMAGES = 4
FINAL_RENDER_TIMEOUT = timedelta(minutes=30)
FINAL_STATES = ("completed", "failed", "cancelled")
MAX_ERROR_CHARS = 1000


class Delivery:
    """How a webhook delivery was answered: an HTTP status and one word for fal's delivery log."""

    ACCEPTED = (200, "accepted")
    IGNORED = (200, "ignored")  # already completed or failed: fal must not retry
    UNSIGNED = (401, "refused")
    WRONG_REQUEST = (403, "refused")
    UNKNOWN_JOB = (404, "refused")
    NOT_READY = (409, "retry")  # the job is not running yet: fal retries later
    MALFORMED = (400, "refused")
    KEYS_UNAVAILABLE = (503, "retry")


class LLMGenerationJob(models.Model):
    _inherit = "llm.generation.job"

    fal_realtime_final = fields.Boolean(
        string="Realtime Final Render",
        readonly=True,
        copy=False,
        help="A job of a fal realtime thread: its result is only taken from fal's signed webhook or from "
        "status polling, never from llm_generate_job's unsigned webhook route.",
    )
    fal_realtime_webhook = fields.Boolean(
        string="Signed Webhook",
        readonly=True,
        copy=False,
        help="fal was given this addon's verified webhook URL for this fal.ai job; without it, polling alone.",
    )

    # ------------------------------------------------------------------ submission

    def _fal_realtime_webhook_url(self):
        """The verified webhook URL to give fal for this job, or None for status polling alone.

        None when an administrator chose polling, or when no key-set URL or base URL is configured
        (deliveries could not be verified, so fal is not asked to send any).
        """
        self.ensure_one()
        params = self.env["ir.config_parameter"].sudo()
        if params.get_param(PARAM_FINAL_RESULTS, RESULTS_WEBHOOK) != RESULTS_WEBHOOK:
            return None
        base_url = (params.get_param("web.base.url") or "").rstrip("/")
        if not (params.get_param(PARAM_WEBHOOK_JWKS_URL, FAL_JWKS_URL) or "").strip() or not base_url:
            return None
        return base_url + WEBHOOK_ROUTE.replace("<int:job_id>", str(self.id))

    def _fal_realtime_request_id(self):
        """fal's request id for this job (llm_fal_ai keeps it in ``external_job_id`` as JSON), or None."""
        self.ensure_one()
        try:
            data = json.loads(self.external_job_id or "")
        except ValueError:
            return None
        request_id = data.get("request_id") if isinstance(data, dict) else None
        return request_id if isinstance(request_id, str) and request_id else None

    # ------------------------------------------------------------------ webhook

    @api.model
    def _fal_realtime_receive(self, job_id, headers, body):
        """Take a webhook delivery for a fal.ai job, if it is fal's own and for this job's request.

        With polling chosen, no job was given this webhook: the answer is immediate, nothing is fetched.
        Otherwise checked in this order: fal's signature over the headers and the body, the timestamp's
        replay window, that the job is a fal.ai job that was given this webhook, that the signed request
        id (and the body's) is the job's own, and that the body is a result. A delivery failing any
        check changes nothing and is logged, without its body, in one line.

        :param job_id: the id in the webhook URL
        :param headers: the request headers
        :param body: the raw request body (bytes)
        :return: a ``Delivery`` answer ``(http status, word)``
        """
        params = self.env["ir.config_parameter"].sudo()
        if params.get_param(PARAM_FINAL_RESULTS, RESULTS_WEBHOOK) != RESULTS_WEBHOOK:
            _logger.warning("fal webhook refused: job=%s reason=results are polled, no webhook is expected", job_id)
            return Delivery.UNKNOWN_JOB
        jwks_url = (params.get_param(PARAM_WEBHOOK_JWKS_URL, FAL_JWKS_URL) or "").strip()
        try:
            request_id = verify_delivery(headers, body, jwks_url)
        except KeySetUnavailable as error:
            _logger.warning("fal webhook not verified: job=%s reason=%s", job_id, error)
            return Delivery.KEYS_UNAVAILABLE
        except WebhookRejected as error:
            _logger.warning("fal webhook refused: job=%s bytes=%s reason=%s", job_id, len(body), error)
            return Delivery.UNSIGNED
        job = self.sudo().browse(job_id).exists()
        if not job or job.provider_id.service != "fal_ai" or not job.fal_realtime_webhook:
            _logger.warning("fal webhook refused: job=%s reason=no fal.ai job awaits this webhook", job_id)
            return Delivery.UNKNOWN_JOB
        expected = job._fal_realtime_request_id()
        if expected is None and job.state not in FINAL_STATES:
            _logger.info("fal webhook early: job=%s state=%s (fal will deliver again)", job.id, job.state)
            return Delivery.NOT_READY
        if request_id != expected:
            _logger.warning("fal webhook refused: job=%s reason=signed for another request (%s)", job.id, request_id)
            return Delivery.WRONG_REQUEST
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("status") not in ("OK", "ERROR"):
            _logger.warning("fal webhook refused: job=%s reason=the body is not a result", job.id)
            return Delivery.MALFORMED
        if data.get("request_id", request_id) != request_id:
            _logger.warning("fal webhook refused: job=%s reason=the body names another request", job.id)
            return Delivery.WRONG_REQUEST
        if not job.fal_realtime_final:
            job.invalidate_recordset(["state"])
            running = job.state == "running"
            job.provider_id.process_webhook_result(data, job)
            job.invalidate_recordset(["state"])
            return Delivery.ACCEPTED if running and job.state != "running" else Delivery.IGNORED
        landed = job._fal_realtime_land(data["status"], data.get("payload"), data.get("error"))
        return Delivery.ACCEPTED if landed else Delivery.IGNORED

    # ------------------------------------------------------------------ polling

    def _fal_realtime_poll(self):
        """Ask fal for this job's status, and record the result once fal has one.

        Called by llm_generate_job's status cron for running jobs. Never moves the job back to
        ``queued`` (nothing would start it again) and never fails it on a passing network error;
        a job fal has not finished after ``FINAL_RENDER_TIMEOUT`` fails so its thread is free again.

        :return: ``{"state": "running"}`` while fal works; ``{}`` once the outcome is recorded here,
            since there is nothing left for the caller to do
        """
        self.ensure_one()
        request_id = self._fal_realtime_request_id()
        if self.state != "running" or not request_id:
            return {}
        client = self.provider_id.fal_ai_get_client()
        status = result = None
        try:
            status = client.status(self.model_id.name, request_id)
            if isinstance(status, client.Completed) and not status.error:
                result = client.result(self.model_id.name, request_id)
        except Exception as error:  # noqa: BLE001 - any failure to ask is a passing one; the timeout bounds it
            _logger.warning("final render status unavailable: job=%s error=%s", self.id, error)
            status = None
        if isinstance(status, client.Completed):
            if status.error:
                self._fal_realtime_land("ERROR", None, status.error)
            else:
                self._fal_realtime_land("OK", result)
            return {}
        if self.started_at and fields.Datetime.now() - self.started_at > FINAL_RENDER_TIMEOUT:
            self._fal_realtime_land("ERROR", None, _("it did not finish within %s minutes.",
                                                     int(FINAL_RENDER_TIMEOUT.total_seconds() // 60)))
            return {}
        return {"state": "running"}

    # ------------------------------------------------------------------ result

    def _fal_realtime_land(self, status, payload, error=None):
        """Record fal's outcome for this job, once: the images kept in Odoo, or the failure.

        The job's row is locked first, so a webhook delivery and a status poll arriving together
        record it once; a job already completed, failed or cancelled ignores further results.

        :param status: fal's ``OK`` or ``ERROR``
        :param payload: fal's result (``images`` with URLs, ``seed``) for ``OK``
        :param error: fal's error text for ``ERROR``
        :return: True when this call recorded the outcome, False when it was ignored
        """
        self.ensure_one()
        job = self.sudo()
        if not job._fal_realtime_lock_running() or not job._fal_realtime_check_input_message():
            return False
        if status != "OK":
            reason = str(error)[:MAX_ERROR_CHARS] if error else _("no reason given")
            job._fal_realtime_fail(_("fal.ai could not render it: %s", reason))
            return True
        urls = _image_urls(payload)
        if not urls:
            job._fal_realtime_fail(_("fal.ai's result holds no image."))
            return True
        images = []
        for url in urls[:MAX_FINAL_IMAGES]:
            try:
                raw, content_type = fetch_image(url, allow_loopback=job._fal_realtime_loopback_images())
            except ImageFetchError as fetch_error:
                job._fal_realtime_fail(_("fal.ai rendered it, but the image could not be kept: %s", fetch_error))
                return True
            mimetype, extension = sniff_image(raw)
            if mimetype != content_type:
                job._fal_realtime_fail(_("fal.ai rendered it, but what came back is not the %s image it claims to be.",
                                         content_type))
                return True
            images.append((raw, extension))
        job._fal_realtime_post(images, payload)
        return True

    def _fal_realtime_loopback_images(self):
        """Whether fal's images may come from loopback: only in the addon's own tests, which ask for it."""
        if not odoo_module.current_test:
            return False
        return bool(self.env["ir.config_parameter"].sudo().get_param(PARAM_TEST_LOOPBACK_IMAGES))

    def _fal_realtime_lock_running(self):
        """Lock this job's row and say whether it still waits for a result.

        A webhook delivery and a status poll arriving together record a result once: the second waits
        for the first's transaction and then finds the job no longer running.
        """
        self.ensure_one()
        self.env.cr.execute("SELECT state FROM llm_generation_job WHERE id = %s FOR UPDATE", [self.id])
        self.invalidate_recordset(["state"])
        if self.state != "running":
            _logger.info("fal result ignored: job=%s state=%s", self.id, self.state)
            return False
        return True

    def _fal_realtime_check_input_message(self):
        """Whether the job's request was posted in the job's own thread; if not, fail it without posting.

        A job is made from a message of its thread; one whose message belongs elsewhere (or is missing)
        was not made by this server's flow, and its result must not appear in a conversation.
        """
        self.ensure_one()
        message = self.sudo().input_message_id
        if message and message.model == "llm.thread" and message.res_id == self.thread_id.id:
            return True
        _logger.warning("fal result refused: job=%s thread=%s message=%s reason=the request is not a message of "
                        "the job's thread", self.id, self.thread_id.id, message.id)
        self.sudo().write({"state": "failed", "completed_at": fields.Datetime.now(),
                           "error_message": _("The job's request is not a message of its conversation.")})
        return False

    def _fal_realtime_post(self, images, payload):
        """Post the kept images into the thread as the assistant's message and complete the job."""
        inputs = self.generation_inputs if isinstance(self.generation_inputs, dict) else {}
        prompt = inputs.get("prompt") or ""
        seed = inputs.get("seed")
        if seed is None and isinstance(payload.get("seed"), int):
            seed = payload["seed"]
        model = self.model_id.name
        meta = _("Rendered at full quality · seed %(seed)s · %(model)s",
                 seed=seed if seed is not None else "-", model=model)
        attachments = [
            (f"render-final-{self.id}-{seed if seed is not None else 'x'}-{index}.{extension}", raw)
            for index, (raw, extension) in enumerate(images, start=1)
        ]
        thread = self.thread_id
        message = thread.message_post(
            body=thread._fal_realtime_body(prompt, meta),
            llm_role="assistant",
            message_type="comment",
            attachments=attachments,
            body_json={"prompt": prompt, "seed": seed, "model": model, "request_id": self._fal_realtime_request_id()},
        )
        self.write({"state": "completed", "completed_at": fields.Datetime.now(), "output_message_id": message.id})
        _logger.info("final render kept: job=%s message=%s images=%s bytes=%s", self.id, message.id, len(images),
                     sum(len(raw) for raw, _extension in images))

    def _fal_realtime_fail(self, reason):
        """Fail the job with ``reason`` and say so in its thread."""
        message = self.thread_id.message_post(
            body=Markup("<p>%s</p>") % _("Render final failed: %s", reason),
            llm_role="assistant",
            message_type="notification",
            is_error=True,
        )
        self.write({"state": "failed", "completed_at": fields.Datetime.now(), "error_message": reason,
                    "output_message_id": message.id})
        _logger.info("final render failed: job=%s reason=%s", self.id, reason)


def _image_urls(payload):
    """The image URLs of a fal text-to-image result (``images: [{url, ...}]`` or ``image: {url}``)."""
    if not isinstance(payload, dict):
        return []
    items = payload.get("images")
    if not isinstance(items, list):
        items = [payload.get("image")]
    return [item["url"] for item in items if isinstance(item, dict) and isinstance(item.get("url"), str)]
