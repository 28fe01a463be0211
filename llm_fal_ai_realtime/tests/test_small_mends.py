"""Small mends: a failed start leaves the request's transaction usable; a ticket from the future means clocks."""

import time
from types import SimpleNamespace
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.llm_fal_ai_realtime.models import fal_realtime_relay
from odoo.addons.llm_fal_ai_realtime.models.llm_provider_fal_jobs import LLMProvider as FalJobsProvider

from .common import FalRealtimeCase

THREAD_LOGGER = "odoo.addons.llm_fal_ai_realtime.models.llm_thread"


@tagged("post_install", "-at_install")
class TestSmallMends(FalRealtimeCase):
    def test_database_error_in_start_fails_the_job_and_leaves_the_cursor_usable(self):
        """A database error while starting Render final fails its job; the request goes on and says why."""

        def broken_submission(provider, job_record):
            job_record.env.cr.execute("SELECT 1 / 0")

        thread = self.lcm_thread.with_user(self.owner)
        with patch.object(FalJobsProvider, "fal_ai_create_generation_job", broken_submission), \
                mute_logger("odoo.sql_db", THREAD_LOGGER, "odoo.addons.llm_generate_job.models.llm_generation_job"):
            message, job = thread.fal_realtime_render_final("a fox in the snow", 7)
        self.assertEqual(job.state, "failed")
        self.assertIn("division by zero", job.error_message)
        self.assertIn("Final render failed", str(message.body))
        self.env.cr.execute("SELECT count(*) FROM llm_generation_job WHERE id = %s", [job.id])
        self.assertEqual(self.env.cr.fetchone()[0], 1, "the transaction is still usable")

    def test_ticket_from_the_future_points_at_the_clocks(self):
        """The relay refusing a ticket as not yet valid is a clock matter, not a secret one."""
        self.require_relay()
        ahead = SimpleNamespace(time=lambda: time.time() + 120, monotonic=time.monotonic)
        with patch.object(fal_realtime_relay, "time", ahead):
            verdict = self.env["res.config.settings"].fal_realtime_check()
        self.assertFalse(verdict["ok"])
        self.assertIn("not valid yet", verdict["message"])
        self.assertIn("check the clocks", verdict["message"])
        self.assertNotIn("same secret", verdict["message"])
        verdict = self.env["res.config.settings"].fal_realtime_check(secret="another-secret-0123456789-abcdefghijkl")
        self.assertIn("same secret", verdict["message"], "a wrong secret still says so")
