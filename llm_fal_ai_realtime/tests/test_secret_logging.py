import logging
from contextlib import contextmanager

from odoo.tests import tagged

from .common import FalRealtimeCase

# Everything Odoo logs reaches the root logger; these also log at DEBUG while captured, since a
# secret in a debug line leaks as surely as one in an info line once someone turns debugging on.
DEBUG_LOGGERS = ("odoo.addons.llm_fal_ai_realtime", "websocket")


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))  # message, arguments and any traceback


@contextmanager
def captured_logs():
    """Collect every formatted log line of the process (the HTTP server's thread included)."""
    handler = _Collect()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in DEBUG_LOGGERS}
    root.addHandler(handler)
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@tagged("post_install", "-at_install")
class TestSecretNeverLogged(FalRealtimeCase):
    NEW_SECRET = "a-new-shared-secret-for-the-log-test-0123456789"
    WRONG_SECRET = "not-the-relays-secret-for-the-log-test-0123456789"

    def assertNotLogged(self, lines, *secrets):
        for secret in secrets:
            leaked = [line for line in lines if secret in line]
            self.assertFalse(leaked, f"a secret reached the log: {leaked}")

    def test_saving_the_secret_does_not_log_it(self):
        """Saving a new shared secret logs that it changed, never the secret."""
        with captured_logs() as lines:
            self.env["res.config.settings"].create({"fal_realtime_shared_secret": self.NEW_SECRET}).execute()
        self.assertTrue([line for line in lines if "shared secret changed" in line], lines)
        self.assertNotLogged(lines, self.NEW_SECRET, self.secret)

    def test_test_connection_does_not_log_the_secret(self):
        """Test connection, successful or refused by the relay, logs neither secret nor ticket."""
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.relay_url", self.require_relay())
        settings = self.env["res.config.settings"]
        with captured_logs() as lines:
            ok = settings.fal_realtime_check(allowed_apps="local/preview")
            refused = settings.fal_realtime_check(secret=self.WRONG_SECRET, allowed_apps="local/preview")
            # Past the app list (which a wrong secret cannot get), the WebSocket probe's own refusal.
            probe = self.env["llm.fal.realtime.relay"]._probe(self.relay_url, self.WRONG_SECRET, "local/preview")
        self.assertTrue(ok["ok"], ok["message"])
        self.assertIn("UNAUTHORIZED", refused["message"])
        self.assertEqual(probe["code"], "UNAUTHORIZED")
        self.assertTrue([line for line in lines if "probe failed: UNAUTHORIZED" in line], lines)
        self.assertNotLogged(lines, self.secret, self.WRONG_SECRET, "fal_jwt_token", "Bearer")

    def test_ticket_endpoint_does_not_log_the_secret_or_the_ticket(self):
        """Issuing tickets over HTTP logs who got one for what, never the secret or the ticket itself."""
        self.authenticate("rt_owner", "rt_owner")
        with captured_logs() as lines:
            result = self.jsonrpc("/llm_fal_ai_realtime/session",
                                  {"thread_id": self.thread.id, "model_id": self.preview_model.id})["result"]
            refused = self.jsonrpc("/llm_fal_ai_realtime/session",
                                   {"thread_id": self.thread.id, "model_id": self.turbo_model.id})
        self.assertIn("error", refused)
        self.assertTrue([line for line in lines if "realtime ticket issued" in line], lines)
        self.assertNotLogged(lines, self.secret, result["ticket"])
