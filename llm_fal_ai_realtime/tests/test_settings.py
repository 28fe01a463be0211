import json
import socket

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import FalRealtimeCase, browser_test_script


@tagged("post_install", "-at_install")
class TestSettings(FalRealtimeCase):
    def settings(self, **values):
        return self.env["res.config.settings"].create(values)

    def test_values_are_saved_and_normalised(self):
        """Saving the form stores every setting; the relay URL loses its trailing slash."""
        self.settings(
            fal_realtime_relay_url="https://relay.example.com/",
            fal_realtime_shared_secret="a-brand-new-secret-0123456789-abcdefghijkl",
            fal_realtime_allowed_apps="local/preview,fal-ai/fast-turbo-diffusion",
            fal_realtime_ticket_lifetime=240,
        ).execute()
        params = self.env["ir.config_parameter"].sudo()
        self.assertEqual(params.get_param("llm_fal_ai_realtime.relay_url"), "https://relay.example.com")
        self.assertEqual(params.get_param("llm_fal_ai_realtime.shared_secret"),
                         "a-brand-new-secret-0123456789-abcdefghijkl")
        self.assertEqual(params.get_param("llm_fal_ai_realtime.allowed_apps"),
                         "local/preview,fal-ai/fast-turbo-diffusion")
        self.assertEqual(params.get_param("llm_fal_ai_realtime.ticket_lifetime"), "240")
        config = self.env["llm.fal.realtime.relay"]._get_config()
        self.assertEqual(config["allowed_apps"], ["local/preview", "fal-ai/fast-turbo-diffusion"])
        self.assertEqual(config["lifetime"], 240)

    def test_secret_is_never_read_back(self):
        """The stored secret never fills a field that a browser could read; an empty field keeps it."""
        form = self.settings()
        values = form.read(list(form._fields))[0]
        self.assertFalse(values["fal_realtime_shared_secret"])
        self.assertTrue(values["fal_realtime_secret_is_set"])
        self.assertNotIn(self.secret, repr(values))
        self.assertNotIn(self.secret, repr(form.default_get(list(form._fields))))
        form.execute()
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("llm_fal_ai_realtime.shared_secret"),
                         self.secret)

    def test_bad_values_refused(self):
        """Bad settings are refused with a message that names the problem."""
        with self.assertRaisesRegex(UserError, "between 30 and 600 seconds"):
            self.settings(fal_realtime_ticket_lifetime=601)
        with self.assertRaisesRegex(UserError, "absolute http:// or https:// URL"):
            self.settings(fal_realtime_relay_url="ftp://relay.example.com")
        with self.assertRaisesRegex(UserError, "is not a realtime app id"):
            self.settings(fal_realtime_allowed_apps="local/preview, not an app")
        with self.assertRaisesRegex(UserError, "at least 32 characters"):
            self.settings(fal_realtime_shared_secret="x" * 31).execute()

    def test_settings_are_for_administrators_only(self):
        """Plain users cannot open the settings; the block is restricted to the system group."""
        with self.assertRaises(AccessError):
            self.env["res.config.settings"].with_user(self.owner).create({})
        view = self.env.ref("llm_fal_ai_realtime.res_config_settings_view_form")
        self.assertIn('groups="base.group_system"', view.arch_db)

    def test_connection_ok_against_the_real_relay(self):
        """Test connection opens a real WebSocket with a fresh ticket and gets a rendered frame back."""
        self.settings(fal_realtime_relay_url=self.require_relay()).execute()
        action = self.settings().action_fal_realtime_test_connection()
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(action["params"]["type"], "success", action["params"]["message"])
        self.assertIn("rendered frame", action["params"]["message"])

    def test_connection_reports_the_relays_error_for_a_wrong_secret(self):
        """With a secret the relay does not share, the relay's own UNAUTHORIZED reason is reported."""
        form = self.settings(fal_realtime_relay_url=self.require_relay(),
                             fal_realtime_shared_secret="not-the-relays-secret-0123456789-abcdefghij")
        action = form.action_fal_realtime_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("UNAUTHORIZED", action["params"]["message"])
        self.assertIn("secret", action["params"]["message"])
        self.assertNotIn("not-the-relays-secret", action["params"]["message"])

    def test_connection_reports_app_not_allowed_by_the_relay(self):
        """An app Odoo allows but the relay does not is reported with the relay's APP_NOT_ALLOWED."""
        verdict = self.env["llm.fal.realtime.relay"]._probe(self.require_relay(), self.secret, "acme/not-served")
        self.assertFalse(verdict["ok"])
        self.assertEqual(verdict["code"], "APP_NOT_ALLOWED", verdict["message"])

    def test_connection_reports_an_unreachable_relay(self):
        """A relay nobody listens on is reported as unreachable, quickly."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        form = self.settings(fal_realtime_relay_url=f"http://127.0.0.1:{port}")
        action = form.action_fal_realtime_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("Cannot reach the relay", action["params"]["message"])


SETTINGS_SCRIPT = browser_test_script("settings", """
        const button = await waitFor("the Test connection button",
            () => document.querySelector("button[name='action_fal_realtime_test_connection']"));
        const secretInput = document.querySelector("div[name='fal_realtime_shared_secret'] input");
        if (!secretInput || secretInput.value !== "" || document.documentElement.outerHTML.includes(%(secret)s)) {
            throw new Error("the stored secret must never reach the browser");
        }
        button.click();
        const notification = await waitFor("the verdict", () => document.querySelector(".o_notification"));
        const text = notification.textContent;
        if (!text.includes("Relay connection OK") || !text.includes("rendered frame")) {
            throw new Error("unexpected verdict: " + text);
        }
""")


@tagged("post_install", "-at_install")
class TestSettingsPage(FalRealtimeCase):
    def test_settings_page_tests_the_connection(self):
        """In the real settings page, Test connection reaches the relay; the secret never shows up in the page."""
        self.require_relay()
        code = SETTINGS_SCRIPT % {"secret": json.dumps(self.secret)}
        self.browser_js("/odoo/action-base_setup.action_general_configuration", code, ready="odoo.isReady",
                        login="admin", timeout=90)
