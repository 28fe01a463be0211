"""Who decides a generation job: Odoo does, never a user.

llm_generate_job gives every employee full rights on ``llm.generation.job``, so any colleague could
otherwise point a job at someone else's thread, clear its Render-final mark, or set its fal request
id, state or inputs, and have a result posted into a conversation that is not theirs. Here those
fields are set only by server code (running as superuser); a user's ``create``/``write`` naming
them is refused, and the form's buttons run as the server once the user may write the job (its
thread is theirs, by the record rule in ``security/``).
"""

import logging

from odoo import _, api, models
from odoo.exceptions import AccessError

_logger = logging.getLogger(__name__)

# What the job does and where its result goes: the server's decision alone.
SERVER_FIELDS = frozenset({
    "fal_realtime_final", "fal_realtime_webhook", "thread_id", "input_message_id", "output_message_id",
    "external_job_id", "state", "generation_inputs", "provider_id", "model_id", "user_id", "company_id",
    "provider_data", "error_message", "retry_count", "max_retries", "queued_at", "started_at", "completed_at",
})


class LLMGenerationJob(models.Model):
    _inherit = "llm.generation.job"

    @api.model
    def _fal_realtime_check_server_fields(self, vals):
        """Refuse a user's values for the fields only the server sets.

        :raise AccessError: naming the fields, unless the caller runs as superuser (server code)
        """
        if self.env.su:
            return
        refused = sorted(SERVER_FIELDS & set(vals))
        if refused:
            _logger.warning("generation job change refused: user=%s jobs=%s fields=%s", self.env.uid, self.ids,
                            ", ".join(refused))
            raise AccessError(_("Only Odoo itself sets these fields of a generation job: %s.", ", ".join(refused)))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._fal_realtime_check_server_fields(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._fal_realtime_check_server_fields(vals)
        return super().write(vals)

    def _fal_realtime_as_server(self):
        """These jobs, to act on as the server, once the current user may write them (their own threads')."""
        self.check_access("write")
        return self.sudo()

    # The form's buttons and the chat's Cancel/Retry: the user's to press, the server's to carry out.
    def action_queue(self):
        return super(LLMGenerationJob, self._fal_realtime_as_server()).action_queue()

    def action_start(self):
        return super(LLMGenerationJob, self._fal_realtime_as_server()).action_start()

    def action_cancel(self):
        return super(LLMGenerationJob, self._fal_realtime_as_server()).action_cancel()

    def action_retry(self):
        return super(LLMGenerationJob, self._fal_realtime_as_server()).action_retry()

    def check_status(self):
        return super(LLMGenerationJob, self._fal_realtime_as_server()).check_status()

    # Whether a job succeeded or failed is the provider's answer, not a user's claim.
    def action_complete(self, output_message_id=None):
        self._fal_realtime_check_server_call("action_complete")
        return super().action_complete(output_message_id=output_message_id)

    def action_fail(self, error_message=None):
        self._fal_realtime_check_server_call("action_fail")
        return super().action_fail(error_message=error_message)

    def _fal_realtime_check_server_call(self, method):
        if not self.env.su:
            _logger.warning("generation job %s refused: user=%s jobs=%s", method, self.env.uid, self.ids)
            raise AccessError(_("Only Odoo itself marks a generation job completed or failed."))
