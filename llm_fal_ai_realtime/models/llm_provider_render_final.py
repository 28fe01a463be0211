"""llm_fal_ai's job path for render-final jobs: this addon's webhook (or none), its polling, no unsigned results.

Other jobs (other modules', and jobs created before this addon was installed) keep llm_fal_ai's
behaviour unchanged.
"""

import json
import logging

from odoo import _, models
from odoo.exceptions import AccessError, UserError

_logger = logging.getLogger(__name__)


class LLMProvider(models.Model):
    _inherit = "llm.provider"

    def fal_ai_create_generation_job(self, job_record):
        """Submit a render-final job to fal's queue with the verified webhook URL, or with no webhook at all.

        :return: ``{"request_id", "status"}`` as JSON, as llm_fal_ai stores it in ``external_job_id``
        :raise UserError: no prompt, or fal did not take the request (with fal's or the network's reason)
        """
        if not job_record.fal_realtime_final:
            return super().fal_ai_create_generation_job(job_record)
        self.ensure_one()
        client = self.fal_ai_get_client()
        arguments = dict(job_record.get_prepared_inputs() or {})
        if not arguments.get("prompt"):
            raise UserError(_("Type a prompt first: the final render needs one."))
        webhook_url = job_record._fal_realtime_webhook_url()
        job_record.write({"fal_realtime_webhook": bool(webhook_url)})
        options = {"webhook_url": webhook_url} if webhook_url else {}
        try:
            handle = client.submit(job_record.model_id.name, arguments=arguments, **options)
        except Exception as error:  # noqa: BLE001 - whatever fal or the network raised, the job says why
            _logger.warning("final render not submitted: job=%s error=%s", job_record.id, error)
            raise UserError(_("Failed to submit job to FAL.AI: %s", error)) from error
        _logger.info("final render submitted: job=%s request=%s webhook=%s", job_record.id, handle.request_id,
                     "signed" if webhook_url else "none (polling)")
        return json.dumps({"request_id": handle.request_id, "status": "queued"})

    def fal_ai_check_generation_job_status(self, job_record):
        """Render-final jobs are polled by this addon, which records their result itself."""
        if not job_record.fal_realtime_final:
            return super().fal_ai_check_generation_job_status(job_record)
        return job_record._fal_realtime_poll()

    def process_webhook_result(self, webhook_data, job_record):
        """Refuse unsigned results for render-final jobs (llm_generate_job's open webhook route calls this).

        :raise AccessError: for a render-final job; others are processed as llm_fal_ai does
        """
        if job_record.fal_realtime_final:
            _logger.warning("unsigned result refused: job=%s (render-final jobs take only fal's signed webhook)",
                            job_record.id)
            raise AccessError(_("This job takes its result only from fal's signed webhook or from status polling."))
        return super().process_webhook_result(webhook_data, job_record)
