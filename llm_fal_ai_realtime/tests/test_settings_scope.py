"""The settings page's save-confirmation fix applies to this addon's block only; other settings keep Odoo's."""

from odoo.tests import tagged

from .common import FalRealtimeCase, browser_test_script

# Runs in the settings page, with the addon's module as the page loaded it: which edits take its confirmation.
SCOPE_SCRIPT = browser_test_script("settings scope", """
        const { blockEdited } = odoo.loader.modules.get("@llm_fal_ai_realtime/settings/settings_form_patch");
        await waitFor("the settings form", () => document.querySelector(".o_fal_realtime_settings"));
        const record = {
            fields: { fal_realtime_relay_url: {}, fal_realtime_allowed_apps: {}, show_effect: {} },
            _initialChanges: { fal_realtime_relay_url: "https://relay.example.com", show_effect: true },
            data: { fal_realtime_relay_url: "https://relay.example.com", show_effect: true },
        };
        if (blockEdited(record)) {
            throw new Error("nothing edited yet");
        }
        record.data.show_effect = false;
        if (blockEdited(record)) {
            throw new Error("another block's setting must keep Odoo's own confirmation");
        }
        record.data.fal_realtime_allowed_apps = "local/preview";
        if (!blockEdited(record)) {
            throw new Error("an edited value of this block takes this addon's confirmation");
        }
        if (blockEdited({ fields: record.fields, data: record.data })) {
            throw new Error("without the opening values, Odoo's own confirmation");
        }
""")


@tagged("post_install", "-at_install")
class TestSettingsConfirmationScope(FalRealtimeCase):
    def test_confirmation_fix_is_limited_to_this_block(self):
        """Only an edited value of this addon's block takes its save confirmation; any other keeps Odoo's."""
        self.browser_js("/odoo/action-base_setup.action_general_configuration", SCOPE_SCRIPT, ready="odoo.isReady",
                        login="admin", timeout=90)
