"""llm_fal_ai's job path while this addon is installed: every fal.ai job verified, none taking unsigned results.

llm_fal_ai submits jobs with a webhook URL on llm_generate_job's public route, which checks no
signature. Here every fal.ai job is submitted with this addon's verified webhook (fal's ED25519
signature, replay window, request id) or with none at all (status polling), and a result lands
once, only into the thread the job's request was posted in. Jobs of other providers are untouched.
"""

import json
import logging

from odoo import _, models
from odoo.exceptions import AccessError, UserError

_logger = logging.getLogger(__name__)


class LLMProvider(models.Model):
    _inherit = "llm.provider"

    def fal_ai_create_generation_job(self, job_record):
        """Submit a fal.ai job to fal's queue with the verified webhook URL, or with no webhook at all.

        The arguments are llm_fal_ai's (the prepared inputs, prompt first); the provider's own
        ``webhook_url`` field is not used, since it names llm_generate_job's unsigned route.

        :return: ``{"request_id", "status"}`` as JSON, as llm_fal_ai stores it in ``external_job_id``
        :raise UserError: no prompt or inputs, or fal did not take the request (with fal's or the network's reason)
        """
        self.ensure_one()
        job = job_record.sudo()
        inputs = job.get_prepared_inputs() or {}
        if isinstance(inputs, str):
            inputs = json.loads(inputs)
        if job.fal_realtime_final and not inputs.get("prompt"):
            raise UserError(_("Type a prompt first: the final render needs one."))
        if not inputs:
            raise UserError(_("Generation inputs are required"))
        arguments = {"prompt": inputs.get("prompt", ""), **inputs}
        client = self.fal_ai_get_client()
        webhook_url = job._fal_realtime_webhook_url()
        job.write({"fal_realtime_webhook": bool(webhook_url)})
        options = {"webhook_url": webhook_url} if webhook_url else {}
        try:
            handle = client.submit(job.model_id.name, arguments=arguments, **options)
        except Exception as error:  # noqa: BLE001 - whatever fal or the network raised, the job says why
            _logger.warning("fal job not submitted: job=%s error=%s", job.id, error)
            raise UserError(_("Failed to submit job to FAL.AI: %s", error)) from error
        _logger.info("fal job submitted: job=%s final=%s request=%s webhook=%s", job.id, job.fal_realtime_final,
                     handle.request_id, "signed" if webhook_url else "none (polling)")
        return json.dumps({"request_id": handle.request_id, "status": "queued"})

    def fal_ai_check_generation_job_status(self, job_record):
        """Render-final jobs are polled by this addon, which records their result itself."""
        if not job_record.fal_realtime_final:
            return super().fal_ai_check_generation_job_status(job_record)
        return job_record._fal_realtime_poll()

    def process_webhook_result(self, webhook_data, job_record):
        """Land a fal result for a job that is not Render final: once, and only into its own thread.

        Called by llm_fal_ai's status polling and by this addon's verified webhook route; llm_fal_ai's
        unsigned route no longer reaches it for fal.ai jobs (``controllers/webhook.py``).

        :raise AccessError: for a render-final job (its result is recorded by ``_fal_realtime_land``)
        """
        if not isinstance(job_record, models.BaseModel) or job_record._name != "llm.generation.job":
            raise AccessError(_("A result lands only on a generation job."))
        if job_record.fal_realtime_final:
            _logger.warning("unsigned result refused: job=%s (render-final jobs land through _fal_realtime_land)",
                            job_record.id)
            raise AccessError(_("This job takes its result only from fal's signed webhook or from status polling."))
        job = job_record.sudo()
        if not job._fal_realtime_lock_running():
            return None
        if not job._fal_realtime_check_input_message():
            return None
        return super().process_webhook_result(webhook_data, job)
