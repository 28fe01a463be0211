"""Fetching the final image is bounded as its docstring says: public addresses only, redirects checked, one deadline.

fal's media host stands in on 127.0.0.1 (``loopback_fal``), redirecting and dripping on request. The
loopback allowance the other tests use is off here unless a test turns it on, as production has it.
"""

import time
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.llm_fal_ai_realtime.models import llm_generation_job
from odoo.addons.llm_fal_ai_realtime.models.llm_generation_job import PARAM_TEST_LOOPBACK_IMAGES
from odoo.addons.llm_fal_ai_realtime.tools import image_fetch
from odoo.addons.llm_fal_ai_realtime.tools.image_fetch import ImageFetchError, fetch_image

from .loopback_fal import signed_headers
from .test_render_final_webhook import IMAGE_PATH, JOB_LOGGER, RenderFinalResultCase

METADATA_URL = "http://169.254.169.254/latest/meta-data/"


@tagged("post_install", "-at_install")
class TestImageFetchBounds(RenderFinalResultCase):
    def test_private_loopback_and_link_local_addresses_are_refused(self):
        """Names and addresses inside the network are refused before any byte is sent."""
        for url in (self.fal.url(IMAGE_PATH), "http://localhost/x.png", "http://10.1.2.3/x.png",
                    "http://192.168.0.10/x.png", METADATA_URL, "http://[::1]/x.png", "http://0.0.0.0/x.png"):
            with self.assertRaisesRegex(ImageFetchError, "not a public address"):
                fetch_image(url, timeout=2)
        self.assertEqual(self.fal.count(IMAGE_PATH), 0)
        raw, content_type = fetch_image(self.fal.url(IMAGE_PATH), allow_loopback=True)
        self.assertEqual((raw, content_type), (self.image, "image/png"))
        with self.assertRaisesRegex(ImageFetchError, "not a public address"):
            fetch_image("http://10.1.2.3/x.png", timeout=2, allow_loopback=True)  # loopback only, never private

    def test_each_redirect_is_checked_again(self):
        """A redirect is followed only to an address that passes the same check, a few times at most."""
        self.fal.redirects["/files/to-metadata"] = METADATA_URL
        self.fal.redirects["/files/to-image"] = self.fal.url(IMAGE_PATH)
        self.fal.redirects["/files/loop"] = "/files/loop"
        with self.assertRaisesRegex(ImageFetchError, "169.254.169.254 resolves to .* not a public address"):
            fetch_image(self.fal.url("/files/to-metadata"), allow_loopback=True, timeout=5)
        self.assertEqual(fetch_image(self.fal.url("/files/to-image"), allow_loopback=True)[0], self.image)
        with self.assertRaisesRegex(ImageFetchError, "more than 3 redirects"):
            fetch_image(self.fal.url("/files/loop"), allow_loopback=True, timeout=5)
        self.assertEqual(self.fal.count("/files/loop"), 4)

    def test_one_deadline_for_the_whole_transfer(self):
        """A server dripping the image a byte at a time, or stalling before its headers, is cut at the deadline."""
        self.fal.drips["/files/drip.png"] = ("image/png", self.image, 0.05)
        self.fal.delays["/files/stall.png"] = 5
        self.fal.files["/files/stall.png"] = ("image/png", self.image)
        for path in ("/files/drip.png", "/files/stall.png"):
            started = time.monotonic()
            with self.assertRaisesRegex(ImageFetchError, "took longer than 1 s"):
                fetch_image(self.fal.url(path), allow_loopback=True, timeout=1)
            self.assertLess(time.monotonic() - started, 2, path)

    def test_the_job_fails_on_an_internal_image_and_posts_nothing(self):
        """fal's signed result naming an internal address (through a redirect) fails the job; nothing is fetched."""
        job, _call = self.render()
        self.fal.redirects["/files/to-metadata"] = METADATA_URL
        body = self.result_body(path="/files/to-metadata")
        with mute_logger(JOB_LOGGER):
            status, _answer = self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))
        self.assertEqual(status, 200)
        self.assertEqual(job.state, "failed")
        self.assertIn("not a public address", job.error_message)
        self.assertFalse(self.lcm_thread.message_ids.attachment_ids)

    def test_a_dripping_image_holds_the_job_no_longer_than_the_deadline(self):
        """The job's row lock is released by the deadline: the delivery is answered and the job failed."""
        job, _call = self.render()
        self.fal.drips["/files/drip.png"] = ("image/png", self.image, 0.05)
        body = self.result_body(path="/files/drip.png")
        started = time.monotonic()
        with patch.object(image_fetch, "FETCH_TIMEOUT", 1), mute_logger(JOB_LOGGER):
            status, _answer = self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(status, 200)
        self.assertEqual(job.state, "failed")
        self.assertIn("took longer than 1 s", job.error_message)

    def test_loopback_allowance_is_for_tests_only(self):
        """The test switch is honoured only while Odoo runs tests; without it a loopback image fails the job."""
        job_model = self.env["llm.generation.job"]
        self.assertTrue(job_model._fal_realtime_loopback_images())
        with patch.object(llm_generation_job.odoo_module, "current_test", False):
            self.assertFalse(job_model._fal_realtime_loopback_images(), "ignored outside a test run")
        self.env["ir.config_parameter"].sudo().set_param(PARAM_TEST_LOOPBACK_IMAGES, False)
        job, _call = self.render()
        body = self.result_body()
        with mute_logger(JOB_LOGGER):
            self.deliver(job, body, signed_headers(self.fal_key, "request-1", body))
        self.assertEqual(job.state, "failed")
        self.assertIn("not a public address", job.error_message)
        self.assertEqual(self.fal.count(IMAGE_PATH), 0)
