"""fal's webhook deliveries: this addon's verified route, and llm_fal_ai's unsigned one closed to fal.ai jobs."""

import logging

from odoo import http
from odoo.http import request

from odoo.addons.llm_fal_ai.controllers.webhook_controller import WebhookController

from ..models.llm_generation_job import WEBHOOK_ROUTE

_logger = logging.getLogger(__name__)

MAX_DELIVERY_BYTES = 1024 * 1024  # a result holds URLs, not images


class FalFinalWebhookController(http.Controller):
    @http.route(WEBHOOK_ROUTE, type="http", auth="public", methods=["POST"], csrf=False, save_session=False,
                max_content_length=MAX_DELIVERY_BYTES)
    def final_webhook(self, job_id, **kwargs):
        """fal's webhook delivery for a fal.ai job: taken only when fal signed it for this job's request.

        Public and CSRF-free because fal has no session; fal's ED25519 signature stands in for both.
        The answer is an HTTP status fal acts on (2xx: delivered; otherwise fal retries) and one word.

        :param job_id: the ``llm.generation.job`` id in the URL
        """
        body = request.httprequest.get_data(cache=False)
        status, word = request.env["llm.generation.job"]._fal_realtime_receive(job_id, request.httprequest.headers,
                                                                              body)
        return request.make_json_response({"status": word}, status=status)


class UnsignedWebhookController(WebhookController):
    @http.route()
    def generation_job_webhook(self, job_id, **kwargs):
        """llm_fal_ai's unsigned route: refused for fal.ai jobs (and unknown ids), one warning line each.

        Anyone can POST here; fal.ai jobs take their results from the verified route or from polling.
        Jobs of other providers keep llm_fal_ai's behaviour.
        """
        job = request.env["llm.generation.job"].sudo().browse(job_id).exists()
        if not job or job.provider_id.service == "fal_ai":
            _logger.warning("unsigned webhook refused: job=%s reason=%s", job_id,
                            "fal.ai jobs take results only from the verified webhook or polling" if job
                            else "no such job")
            return {"status": "error", "message": "Refused: fal.ai results are taken only from the signed webhook."}
        return super().generation_job_webhook(job_id, **kwargs)
