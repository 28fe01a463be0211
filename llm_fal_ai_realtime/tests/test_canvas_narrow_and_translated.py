"""The live canvas in a narrow column, and in another language."""

from odoo.tests import tagged

from .common import FalRealtimeCase, browser_test_script

NARROW_SCRIPT = browser_test_script("narrow canvas", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        // A chat column at a phone's width inside a wide window (a chat beside a form, a split screen): the
        // canvas follows its column's width. A real phone-sized window is test_room's.
        const column = canvas.closest(".o_live_canvas_host").parentElement;
        column.style.maxWidth = "390px";
        await waitFor("a 390 px column", () => column.getBoundingClientRect().width <= 390);
        const messages = document.querySelector(".o-llm-thread-area");
        const stage = canvas.querySelector(".o_live_canvas_stage");
        const toggle = canvas.querySelector(".o_live_canvas_toggle");
        if (!toggle
            || getComputedStyle(toggle).display === "none") { throw new Error("a narrow canvas can be opened"); }
        // Folded: a strip; the messages keep the width and most of the height.
        if (canvas.getBoundingClientRect().height > 130 || stage.getBoundingClientRect().width > 64) {
            throw new Error("the folded canvas must be a compact strip: "
                + JSON.stringify(canvas.getBoundingClientRect()));
        }
        if (messages.getBoundingClientRect().width < 380) {
            throw new Error("the messages are squeezed to " + messages.getBoundingClientRect().width + " px");
        }
        // The strip shows the canvas already (a thumbnail): its button enlarges it, it does not "show" it.
        if (toggle.title !== "Enlarge the live canvas") { throw new Error("the folded toggle says: " + toggle.title); }
        toggle.click();
        await waitFor("the open canvas", () => stage.getBoundingClientRect().width >= 250);
        if (toggle.getAttribute("aria-expanded") !== "true") { throw new Error("the toggle says it is open"); }
        if (toggle.title !== "Fold the live canvas into a strip") {
            throw new Error("the open toggle says: " + toggle.title);
        }
        toggle.click();
        await waitFor("the strip again", () => stage.getBoundingClientRect().width <= 64);
        // Keep stays at hand in the strip.
        const keep = canvas.querySelector(".o_live_canvas_keep");
        if (!keep || keep.getBoundingClientRect().height === 0) { throw new Error("Keep stays in the strip"); }
""")


@tagged("post_install", "-at_install")
class TestNarrowCanvas(FalRealtimeCase):
    def test_the_canvas_folds_into_a_strip_in_a_narrow_column(self):
        """In a 390 px chat column the canvas is a compact strip the user can open and fold again."""
        self.require_relay()
        self.browser_js("/odoo", NARROW_SCRIPT % {"thread_id": self.thread.id}, ready="odoo.isReady",
                        login="rt_owner", timeout=90)


FRENCH_SCRIPT = browser_test_script("french canvas", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        const keep = await waitFor("Keep", () => canvas.querySelector(".o_live_canvas_keep"));
        if (keep.textContent.trim() !== "Garder") { throw new Error("Keep is not translated: " + keep.textContent); }
        await waitFor("the send button in French", () =>
            document.querySelector(".o-llm-composer-area .o-mail-Composer-send")
                ?.getAttribute("aria-label") === "Garder");
        const input = document.querySelector(".o-llm-composer-area .o-mail-Composer-input");
        input.focus();
        input.value = "un phare au crépuscule";
        input.dispatchEvent(new InputEvent("input", { bubbles: true }));
        await waitFor("the status in French", () =>
            canvas.querySelector(".o_live_canvas_status").textContent === "En direct");
""")


@tagged("post_install", "-at_install")
class TestTranslatedCanvas(FalRealtimeCase):
    def test_the_canvas_speaks_the_users_language(self):
        """With French loaded (the addon's i18n/fr.po), the canvas's labels and states are in French."""
        self.require_relay()
        self.env["res.lang"]._activate_lang("fr_FR")
        self.owner.lang = "fr_FR"
        self.browser_js("/odoo", FRENCH_SCRIPT % {"thread_id": self.thread.id}, ready="odoo.isReady",
                        login="rt_owner", timeout=90)

    def test_server_messages_are_translated_too(self):
        """What to fix before a final render is said in the user's language."""
        self.env["res.lang"]._activate_lang("fr_FR")
        self.provider.api_key = False
        thread = self.lcm_thread.with_user(self.owner).with_context(lang="fr_FR")
        with self.assertRaisesRegex(Exception, "indiquez la clé API fal.ai"):
            thread._fal_realtime_check_final_ready()
