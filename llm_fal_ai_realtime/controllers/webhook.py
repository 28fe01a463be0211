from odoo import http
from odoo.http import request

from ..models.llm_generation_job import WEBHOOK_ROUTE

MAX_DELIVERY_BYTES = 1024 * 1024  # a result holds URLs, not images


class FalFinalWebhookController(http.Controller):
    @http.route(WEBHOOK_ROUTE, type="http", auth="public", methods=["POST"], csrf=False, save_session=False,
                max_content_length=MAX_DELIVERY_BYTES)
    def final_webhook(self, job_id, **kwargs):
        """fal's webhook delivery for a render-final job: taken only when fal signed it for this job's request.

        Public and CSRF-free because fal has no session; fal's ED25519 signature stands in for both.
        The answer is an HTTP status fal acts on (2xx: delivered; otherwise fal retries) and one word.

        :param job_id: the ``llm.generation.job`` id in the URL
        """
        body = request.httprequest.get_data(cache=False)
        status, word = request.env["llm.generation.job"]._fal_realtime_receive(job_id, request.httprequest.headers,
                                                                              body)
        return request.make_json_response({"status": word}, status=status)
