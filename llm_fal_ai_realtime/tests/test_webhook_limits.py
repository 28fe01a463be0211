"""The webhook cannot be used to tie up Odoo: anonymous posts cost no outbound request each, nothing waits long.

Deliveries come as an anonymous client sends them, to Odoo's own test server; fal's key server is the
loopback stand-in, counting what it is asked for, and slow on request.
"""

import threading
import time
from unittest.mock import patch

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.llm_fal_ai_realtime.models.llm_generation_job import PARAM_FINAL_RESULTS, PARAM_WEBHOOK_JWKS_URL
from odoo.addons.llm_fal_ai_realtime.tools import fal_webhook

from .loopback_fal import JWKS_PATH, signed_headers
from .test_render_final_webhook import JOB_LOGGER, RenderFinalResultCase

MISSING_KEYS = "/no-such-keys"
SLOW_KEYS = "/slow/jwks.json"


@tagged("post_install", "-at_install")
class TestWebhookCannotTieUpOdoo(RenderFinalResultCase):
    def post(self, job, body, headers):
        started = time.monotonic()
        with mute_logger(JOB_LOGGER):
            status, answer = self.deliver(job, body, headers)
        return status, answer, time.monotonic() - started

    def test_unreachable_key_set_is_fetched_once_per_cooldown(self):
        """While fal's keys are unreachable, a stream of anonymous deliveries costs one fetch, not one each."""
        job, _call = self.render()
        self.env["ir.config_parameter"].sudo().set_param(PARAM_WEBHOOK_JWKS_URL, self.fal.url(MISSING_KEYS))
        body = self.result_body()
        with patch.object(fal_webhook, "KEY_SETS", fal_webhook.KeySetCache(cooldown=60)):
            for _attempt in range(5):
                headers = signed_headers(Ed25519PrivateKey.generate(), "request-1", body)
                status, answer, _took = self.post(job, body, headers)
                self.assertEqual((status, answer), (503, {"status": "retry"}))
        self.assertEqual(self.fal.count(MISSING_KEYS), 1, "the failure is cached for the cooldown")
        self.assertUnchanged(job)

    def test_polling_only_answers_at_once_and_fetches_nothing(self):
        """With polling chosen, the route refuses every delivery without asking fal's key server anything."""
        job, _call = self.render()
        self.env["ir.config_parameter"].sudo().set_param(PARAM_FINAL_RESULTS, "polling")
        body = self.result_body()
        for key in (self.fal_key, Ed25519PrivateKey.generate()):
            status, answer, took = self.post(job, body, signed_headers(key, "request-1", body))
            self.assertEqual((status, answer), (404, {"status": "refused"}))
            self.assertLess(took, 5)
        self.assertEqual(self.fal.count(JWKS_PATH), 0)
        self.assertUnchanged(job)

    def test_malformed_timestamp_is_refused_as_unsigned(self):
        """A 5,000-digit timestamp (or a signed one) is a 401, not a server error, and fetches nothing."""
        job, _call = self.render()
        body = self.result_body()
        for timestamp in ("9" * 5000, "1" * 13, "-1", "+123", "12e3"):
            headers = signed_headers(self.fal_key, "request-1", body)
            headers["X-Fal-Webhook-Timestamp"] = timestamp
            status, answer, _took = self.post(job, body, headers)
            self.assertEqual((status, answer), (401, {"status": "refused"}), timestamp[:20])
        self.assertEqual(self.fal.count(JWKS_PATH), 0)
        self.assertUnchanged(job)


@tagged("post_install", "-at_install")
class TestKeySetFetchIsSingleFlight(RenderFinalResultCase):
    """The key cache on its own, with real threads: one fetch per URL at a time, no lock held across it."""

    def setUp(self):
        super().setUp()
        self.fal.delays[SLOW_KEYS] = 2.0
        self.fal.published = {"fal-1": self.fal_key}

    def test_concurrent_deliveries_cause_one_fetch_and_do_not_wait_for_it(self):
        """Eight requests needing the same slow key set: one fetch; the others are answered at once."""
        cache = fal_webhook.KeySetCache(cooldown=60)
        url = self.fal.url(SLOW_KEYS)
        outcomes = []

        def ask():
            started = time.monotonic()
            try:
                cache.keys(url)
                outcomes.append(("keys", time.monotonic() - started))
            except fal_webhook.KeySetUnavailable:
                outcomes.append(("busy", time.monotonic() - started))

        threads = [threading.Thread(target=ask) for _index in range(8)]
        for thread in threads:
            thread.start()
            time.sleep(0.02)
        for thread in threads:
            thread.join(10)
        self.assertEqual(self.fal.count(SLOW_KEYS), 1)
        self.assertEqual(sorted(kind for kind, _took in outcomes), ["busy"] * 7 + ["keys"])
        self.assertTrue(all(took < 1 for kind, took in outcomes if kind == "busy"), outcomes)
        self.assertEqual(len(cache.keys(url)), 1, "the fetched keys are cached for the others")

    def test_a_slow_key_server_delays_no_other(self):
        """While one URL's fetch hangs, another URL's key set is fetched without waiting for it."""
        cache = fal_webhook.KeySetCache(cooldown=60)
        slow = threading.Thread(target=lambda: cache.keys(self.fal.url(SLOW_KEYS)))
        slow.start()
        time.sleep(0.2)
        started = time.monotonic()
        self.assertTrue(cache.keys(self.fal.url(JWKS_PATH)))
        self.assertLess(time.monotonic() - started, 1.0)
        slow.join(10)
