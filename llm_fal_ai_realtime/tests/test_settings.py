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

    def test_websocket_and_http_urls_are_stored_in_one_form(self):
        """ws(s):// is what people type for a WebSocket relay: accepted, and stored as http(s)://."""
        params = self.env["ir.config_parameter"].sudo()
        for typed, stored in [("wss://relay.example.com/", "https://relay.example.com"),
                              ("ws://127.0.0.1:8000", "http://127.0.0.1:8000"),
                              ("WSS://relay.example.com/prefix/", "https://relay.example.com/prefix"),
                              ("http://relay.example.com", "http://relay.example.com")]:
            self.settings(fal_realtime_relay_url=typed).execute()
            self.assertEqual(params.get_param("llm_fal_ai_realtime.relay_url"), stored, typed)
        session = self.env["llm.fal.realtime.relay"].with_user(self.owner)._issue_session(
            self.thread.id, self.preview_model.id)
        self.assertTrue(session["url"].startswith("ws://relay.example.com/local/preview/realtime?session="))

    def test_bad_values_refused(self):
        """Bad settings are refused with a message that names the problem."""
        with self.assertRaisesRegex(UserError, "between 30 and 600 seconds"):
            self.settings(fal_realtime_ticket_lifetime=601)
        with self.assertRaisesRegex(UserError, "absolute wss://, ws://, https:// or http:// URL"):
            self.settings(fal_realtime_relay_url="ftp://relay.example.com")
        with self.assertRaisesRegex(UserError, "is not a realtime app id"):
            self.settings(fal_realtime_allowed_apps="local/preview, not an app")
        with self.assertRaisesRegex(UserError, "at least 32 characters"):
            self.settings(fal_realtime_shared_secret="x" * 31).execute()

    def test_settings_are_for_administrators_only(self):
        """Plain users cannot open the settings nor test a relay; the block is restricted to the system group."""
        with self.assertRaises(AccessError):
            self.env["res.config.settings"].with_user(self.owner).create({})
        with self.assertRaises(AccessError):
            self.env["res.config.settings"].with_user(self.owner).fal_realtime_check(relay_url=self.relay_url)
        view = self.env.ref("llm_fal_ai_realtime.res_config_settings_view_form")
        self.assertIn('groups="base.group_system"', view.arch_db)

    def check(self, **values):
        """Test connection with values on screen (not saved)."""
        return self.env["res.config.settings"].fal_realtime_check(**values)

    def test_connection_tests_unsaved_values(self):
        """Test connection uses the URL on screen (typed as ws://), not the stored one, and saves nothing."""
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("llm_fal_ai_realtime.relay_url", "https://relay.example.com")
        typed = self.require_relay().replace("http://", "ws://")
        verdict = self.check(relay_url=typed, allowed_apps="local/preview")
        self.assertTrue(verdict["ok"], verdict["message"])
        self.assertEqual(verdict["title"], "Relay connection OK (local/preview)")
        self.assertIn("rendered frame", verdict["message"])
        self.assertEqual(verdict["relay_apps"], ["local/preview"])
        self.assertIn("embedded CPU preview", verdict["labels"]["local/preview"])
        self.assertEqual(params.get_param("llm_fal_ai_realtime.relay_url"), "https://relay.example.com")

    def test_connection_reports_invalid_unsaved_values(self):
        """A bad URL or app id on screen is a failed verdict naming the problem, never an error that blocks the form."""
        verdict = self.check(relay_url="ftp://relay.example.com")
        self.assertFalse(verdict["ok"])
        self.assertIn("absolute wss://", verdict["message"])
        verdict = self.check(relay_url=self.require_relay(), allowed_apps="local/preview, not an app")
        self.assertFalse(verdict["ok"])
        self.assertIn("'not' is not a realtime app id", verdict["message"])

    def test_connection_compares_the_app_lists_both_ways(self):
        """Apps allowed here that the relay refuses, and apps the relay serves that are not allowed here."""
        relay_url = self.require_relay()
        verdict = self.check(relay_url=relay_url, allowed_apps="local/preview, fal-ai/fast-lcm-diffusion")
        self.assertTrue(verdict["ok"], verdict["message"])
        self.assertEqual(verdict["refused"], ["fal-ai/fast-lcm-diffusion"])
        self.assertEqual(verdict["not_allowed"], [])
        verdict = self.check(relay_url=relay_url, allowed_apps="fal-ai/fast-lcm-diffusion, acme/other")
        self.assertFalse(verdict["ok"])
        self.assertEqual(verdict["code"], "APP_NOT_ALLOWED")
        self.assertEqual(verdict["refused"], ["fal-ai/fast-lcm-diffusion", "acme/other"])
        self.assertEqual(verdict["not_allowed"], ["local/preview"])
        self.assertIn("None of the apps allowed here is served by this relay", verdict["message"])

    def test_connection_reports_the_relays_error_for_a_wrong_secret(self):
        """With a secret the relay does not share, the relay's own UNAUTHORIZED reason is reported."""
        verdict = self.check(relay_url=self.require_relay(), secret="not-the-relays-secret-0123456789-abcdefghij")
        self.assertFalse(verdict["ok"])
        self.assertEqual(verdict["code"], "UNAUTHORIZED")
        self.assertIn("secret", verdict["message"])
        self.assertNotIn("not-the-relays-secret", verdict["message"])
        self.assertEqual(verdict["relay_apps"], [], "the relay lists its apps for the shared secret only")

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
        verdict = self.check(relay_url=f"ws://127.0.0.1:{port}")
        self.assertFalse(verdict["ok"])
        self.assertIn("Cannot reach the relay", verdict["message"])


SETTINGS_SCRIPT = browser_test_script("settings", """
        const block = await waitFor("the fal.ai Realtime block",
            () => document.querySelector(".o_fal_realtime_settings"));
        const secretInput = block.querySelector("div[name='fal_realtime_shared_secret'] input");
        if (!secretInput || secretInput.value !== "" || document.documentElement.outerHTML.includes(%(secret)s)) {
            throw new Error("the stored secret must never reach the browser");
        }
        if (!block.textContent.includes("A shared secret is set.")
                || block.textContent.includes("No shared secret yet")) {
            throw new Error("the page must say that a secret is stored (without showing it)");
        }
        const urlInput = block.querySelector("div[name='fal_realtime_relay_url'] input");
        const appsInput = block.querySelector("div[name='fal_realtime_allowed_apps'] input");
        async function type(input, value) {
            input.focus();
            input.value = value;
            input.dispatchEvent(new Event("input", { bubbles: true }));
            input.dispatchEvent(new Event("change", { bubbles: true }));
            await sleep(300);
        }
        const testButton = () => block.querySelector(".o_fal_realtime_test");
        async function testConnection(expected) {
            testButton().click();
            await sleep(100);
            if (document.querySelector(".modal")) {
                throw new Error("Test connection must not ask to save first");
            }
            return waitFor("a verdict saying " + expected, () => {
                const verdict = block.querySelector(".o_fal_realtime_verdict");
                return verdict && verdict.textContent.includes(expected) && verdict;
            });
        }
        // Unsaved values: the relay's URL typed as ws://, and apps the relay partly serves.
        await type(urlInput, %(ws_url)s);
        await type(appsInput, "local/preview, fal-ai/fast-lcm-diffusion");
        let verdict = await testConnection("Relay connection OK (local/preview)");
        if (verdict.dataset.ok !== "1") {
            throw new Error("unexpected verdict: " + verdict.textContent);
        }
        const refused = await waitFor("the refused apps", () => block.querySelector(".o_fal_realtime_refused"));
        if (!refused.textContent.includes("fal-ai/fast-lcm-diffusion")
                || refused.textContent.includes("local/preview")) {
            throw new Error("the apps the relay refuses: " + refused.textContent);
        }
        const offered = block.querySelector(".o_fal_realtime_relay_apps");
        const preview = offered.querySelector("input[data-app='local/preview']");
        if (!preview || !preview.checked || !offered.textContent.includes("embedded CPU preview")) {
            throw new Error("the relay's list, with local/preview allowed and labelled: " + offered.textContent);
        }
        // Choosing from the relay's list edits the field on screen.
        refused.querySelector(".o_fal_realtime_remove").click();
        await waitFor("the refused app removed", () => appsInput.value === "local/preview");
        if (block.querySelector(".o_fal_realtime_refused")) {
            throw new Error("nothing is refused any more");
        }
        // A wrong secret on screen: the relay's own refusal.
        await type(secretInput, "not-the-relays-secret-0123456789-abcdefghij");
        verdict = await testConnection("UNAUTHORIZED");
        if (verdict.dataset.ok !== "0") {
            throw new Error("unexpected verdict for a wrong secret: " + verdict.textContent);
        }
        await type(secretInput, "");
        // An invalid URL on screen: a verdict naming it, and the form stays usable.
        await type(urlInput, "ftp://relay.example.com");
        verdict = await testConnection("absolute wss://");
        if (verdict.dataset.ok !== "0") {
            throw new Error("unexpected verdict for a bad URL: " + verdict.textContent);
        }
        // Another button asks "Unsaved changes?"; saving the bad value from there fails, and must not
        // leave the form's buttons disabled.
        const other = [...document.querySelectorAll(".o_form_view button")]
            .find((button) => button.textContent.includes("Manage Users"));
        other.click();
        const dialog = await waitFor("the unsaved changes dialog", () => document.querySelector(".modal"));
        [...dialog.querySelectorAll("button")].find((button) => button.textContent.trim() === "Save").click();
        const error = await waitFor("the error dialog", () => {
            const modal = document.querySelector(".modal");
            return modal && modal.textContent.includes("absolute wss://") && modal;
        });
        error.querySelector(".modal-footer button").click();
        await waitFor("the dialogs closed", () => !document.querySelector(".modal"));
        await sleep(500);
        const stuck = [testButton(), document.querySelector(".o_form_button_save"),
                       document.querySelector(".o_form_button_cancel")].filter((button) => !button || button.disabled);
        if (stuck.length) {
            throw new Error("buttons left disabled after a failed save: " + stuck.length);
        }
        // Leave as found: Discard drops the values tried out (and Discard itself must work).
        document.querySelector(".o_form_button_cancel").click();
        await waitFor("the values discarded", () => !document.querySelector(".o_form_dirty")
            && document.querySelector(".o_fal_realtime_settings div[name='fal_realtime_relay_url'] input")?.value
               === "https://relay.example.com");
""")


@tagged("post_install", "-at_install")
class TestSettingsPage(FalRealtimeCase):
    def test_settings_page_tests_the_values_on_screen(self):
        """In the real settings page: Test connection on unsaved values (good, wrong secret, bad URL), the relay's
        apps to choose from, and no button left disabled after a failed save from the unsaved-changes dialog.
        (Saving reloads the page, which ends a browser test: test_websocket_and_http_urls_are_stored_in_one_form.)"""
        relay_url = self.require_relay()
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.relay_url", "https://relay.example.com")
        code = SETTINGS_SCRIPT % {"secret": json.dumps(self.secret),
                                  "ws_url": json.dumps(relay_url.replace("http://", "ws://"))}
        self.browser_js("/odoo/action-base_setup.action_general_configuration", code, ready="odoo.isReady",
                        login="admin", timeout=120, error_checker=lambda message: "absolute wss://" not in message)
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("llm_fal_ai_realtime.relay_url"),
                         "https://relay.example.com", "Test connection saves nothing")
