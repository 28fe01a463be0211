from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import FalRealtimeCase, browser_test_script


@tagged("post_install", "-at_install")
class TestRealtimeMarkers(FalRealtimeCase):
    def test_fetch_models_lines_say_which_models_are_realtime(self):
        """Fetch Models marks fal's realtime apps and the relay's embedded preview, and nothing else."""
        provider = self.env["llm.provider"].create({"name": "fal markers", "service": "fal_ai", "api_key": "unused"})
        wizard = self.env["llm.fetch.models.wizard"].browse(provider.action_fetch_models()["res_id"])
        kinds = {line.name: line.realtime_kind for line in wizard.line_ids}
        self.assertEqual(kinds["fal-ai/fast-lcm-diffusion"], "fal")
        self.assertEqual(kinds["fal-ai/fast-turbo-diffusion"], "fal")
        self.assertEqual(kinds["local/preview"], "preview")
        self.assertFalse(kinds["fal-ai/flux/dev"])

    def test_local_preview_says_what_it_is(self):
        """Wherever a model is picked by name, local/preview reads as the relay's embedded CPU preview."""
        self.assertEqual(self.preview_model.display_name,
                         "local/preview (the relay's embedded CPU preview, not a fal.ai model)")
        self.assertEqual(self.lcm_model.display_name, "fal-ai/fast-lcm-diffusion")
        apps = {entry["app"]: entry for entry in self.env["llm.model"].fal_realtime_apps()}
        self.assertEqual(apps["local/preview"]["kind"], "preview")
        self.assertEqual(apps["local/preview"]["label"], "Realtime · relay's CPU preview")
        self.assertEqual(apps["fal-ai/fast-lcm-diffusion"]["label"], "Realtime")

    def test_new_live_canvas_opens_the_first_allowed_realtime_model(self):
        """"New live canvas" opens a thread of the user's own on the first allowed app's model."""
        params = self.env["ir.config_parameter"].sudo()
        Model = self.env["llm.model"].with_user(self.owner)
        thread = self.env["llm.thread"].browse(Model.fal_realtime_new_thread())
        self.assertEqual(thread.model_id, self.preview_model)
        self.assertEqual(thread.user_id, self.owner)
        params.set_param("llm_fal_ai_realtime.allowed_apps", "fal-ai/fast-turbo-diffusion, local/preview")
        self.assertEqual(self.env["llm.thread"].browse(Model.fal_realtime_new_thread()).model_id, self.turbo_model)
        params.set_param("llm_fal_ai_realtime.allowed_apps", "acme/not-a-model")
        with self.assertRaisesRegex(UserError, "Fetch Models"):
            Model.fal_realtime_new_thread()


WIZARD_SCRIPT = browser_test_script("fetch models markers", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction({
            type: "ir.actions.act_window", res_model: "llm.provider", res_id: %(provider_id)s, views: [[false, "form"]],
        });
        (await waitFor("Fetch Models", () => document.querySelector("button[name='action_fetch_models']"))).click();
        const rows = await waitFor("the wizard's lines", () => {
            const found = [...document.querySelectorAll(".modal .o_data_row")];
            return found.length > 3 && found;
        });
        const row = (name) => rows.find((r) => r.querySelector("td[name='name']")?.textContent.trim() === name);
        const marker = (name) => row(name)?.querySelector(".o_fal_realtime_marker");
        const lcm = marker("fal-ai/fast-lcm-diffusion");
        if (!lcm || !lcm.querySelector(".fa-bolt") || lcm.textContent.trim() !== "Realtime") {
            throw new Error("fal realtime models carry a bolt and 'Realtime': " + (lcm && lcm.outerHTML));
        }
        const preview = marker("local/preview");
        if (!preview || !preview.querySelector(".fa-microchip")
                || !preview.textContent.includes("relay's CPU preview")) {
            throw new Error("local/preview is marked as the relay's CPU preview: " + (preview && preview.outerHTML));
        }
        if (!row("fal-ai/flux/dev") || marker("fal-ai/flux/dev")) {
            throw new Error("a model that is not realtime carries no marker");
        }
""")

PICKER_SCRIPT = browser_test_script("model picker markers and new live canvas", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const header = await waitFor("the thread header", () => document.querySelector(".o-llm-thread-header"));
        const toggle = await waitFor("the model picker", () =>
            [...header.querySelectorAll(".dropdown-toggle")].find((b) => b.querySelector(".fa-cube")));
        const current = toggle.querySelector(".o_fal_realtime_marker");
        if (!current || current.dataset.kind !== "fal" || !current.querySelector(".fa-bolt")) {
            throw new Error("the current realtime model is marked in the picker's button: " + toggle.outerHTML);
        }
        toggle.click();
        const items = await waitFor("the model list", () => {
            const found = [...document.querySelectorAll(".o-dropdown--menu .o-dropdown-item")];
            return found.length >= 4 && found;
        });
        const item = (name) => items.find((i) => i.textContent.includes(name));
        const preview = item("local/preview").querySelector(".o_fal_realtime_marker");
        if (!preview || !preview.textContent.includes("relay's CPU preview")
                || !preview.querySelector(".fa-microchip")) {
            throw new Error("local/preview is marked as the relay's CPU preview in the picker");
        }
        if (!item("fal-ai/fast-turbo-diffusion").querySelector(".o_fal_realtime_marker .fa-bolt")) {
            throw new Error("fal realtime models carry the bolt in the picker");
        }
        if (item("fal-ai/flux/dev").querySelector(".o_fal_realtime_marker")) {
            throw new Error("a model that is not realtime carries no marker");
        }
        toggle.click();
        // "New live canvas" opens a new conversation on a realtime model, with its canvas.
        const before = env.services["mail.store"].discuss.thread.id;
        document.querySelector(".o-llm-sidebar-header .o_fal_realtime_new_canvas").click();
        await waitFor("a new thread with a live canvas", () => {
            const thread = env.services["mail.store"].discuss.thread;
            return thread && thread.id !== before && document.querySelector(".o_live_canvas");
        });
        const name = document.querySelector(".o-llm-thread-header h5").textContent;
        if (!name.includes("Live canvas")) { throw new Error("unexpected thread name: " + name); }
""")


@tagged("post_install", "-at_install")
class TestRealtimeMarkersInTheBrowser(FalRealtimeCase):
    def test_fetch_models_wizard_marks_realtime_models(self):
        """The Fetch Models dialog shows the realtime marker (icon and label) on realtime lines only."""
        self.browser_js("/odoo", WIZARD_SCRIPT % {"provider_id": self.provider.id}, ready="odoo.isReady",
                        login="admin", timeout=90)

    def test_model_picker_marks_realtime_models_and_new_live_canvas_opens_one(self):
        """The chat's model picker marks realtime models; New live canvas opens a thread on one."""
        before = self.env["llm.thread"].search_count([("user_id", "=", self.owner.id)])
        self.browser_js("/odoo", PICKER_SCRIPT % {"thread_id": self.lcm_thread.id}, ready="odoo.isReady",
                        login="rt_owner", timeout=90)
        threads = self.env["llm.thread"].search([("user_id", "=", self.owner.id)], order="id desc")
        self.assertEqual(len(threads), before + 1)
        self.assertEqual(threads[0].model_id, self.preview_model)
