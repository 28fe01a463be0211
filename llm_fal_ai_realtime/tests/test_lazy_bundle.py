"""The browser client and the canvas load only where a realtime thread shows its canvas."""

from odoo.tests import tagged

from .common import FalRealtimeCase, browser_test_script

# Runs in the Odoo page. The lazy bundle's modules, and the backend module that mounts them.
LAZY_SCRIPT = browser_test_script("lazy bundle", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        const LAZY_PREFIXES = [
            "@llm_fal_ai_realtime/fal_realtime/", // the browser client and msgpack
            "@llm_fal_ai_realtime/live_canvas/",
            "@llm_fal_ai_realtime/chat/chat_live_canvas",
        ];
        const loaded = () => [...odoo.loader.modules.keys()]
            .filter((name) => LAZY_PREFIXES.some((prefix) => name.startsWith(prefix)));
        const fetched = () => performance.getEntriesByType("resource").map((entry) => entry.name)
            .filter((url) => url.includes("llm_fal_ai_realtime.live_canvas"));
        function nothingLoaded(where) {
            if (loaded().length || fetched().length) {
                throw new Error(`${where} loaded the live canvas: ${[...loaded(), ...fetched()].join(", ")}`);
            }
        }
        if (!odoo.loader.modules.has("@llm_fal_ai_realtime/chat/llm_chat_container_patch")) {
            throw new Error("the addon's backend modules must be loaded (else this test proves nothing)");
        }
        // Discuss, a plain form, and LLM > Chat on a thread whose model is not realtime (New live canvas, a
        // template of the backend bundle, shows once the realtime models are known).
        await env.services.action.doAction("mail.action_discuss");
        await waitFor("Discuss", () => document.querySelector(".o-mail-Discuss"));
        nothingLoaded("Discuss");
        await env.services.action.doAction({
            type: "ir.actions.act_window", res_model: "res.partner", res_id: %(partner_id)s,
            views: [[false, "form"]],
        });
        await waitFor("a partner's form", () => document.querySelector(".o_form_view"));
        nothingLoaded("A form");
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(plain_thread_id)s" },
        });
        await waitFor("the plain thread in the chat", () =>
            env.services["llm.store"].activeLLMThread?.id === %(plain_thread_id)s
            && document.querySelector(".o_fal_realtime_new_canvas"));
        await sleep(500); // a canvas on its way would have asked for the bundle by now
        if (document.querySelector(".o_live_canvas")) { throw new Error("a plain thread has no canvas"); }
        nothingLoaded("LLM > Chat on a plain thread");
        // A realtime thread: the bundle comes, and its templates (the canvas and its parts) render.
        await env.services["llm.store"].selectThread(%(thread_id)s);
        const canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        const expected = ["@llm_fal_ai_realtime/fal_realtime/fal_realtime",
            "@llm_fal_ai_realtime/fal_realtime/vendor/msgpack", "@llm_fal_ai_realtime/live_canvas/live_canvas",
            "@llm_fal_ai_realtime/chat/chat_live_canvas"];
        const missing = expected.filter((name) => !odoo.loader.modules.has(name));
        if (missing.length || !fetched().length) {
            throw new Error("the canvas came without its bundle: " + missing.join(", "));
        }
        for (const part of [".o_live_canvas_status", ".o_live_canvas_seed", ".o_live_canvas_keep"]) {
            if (!canvas.querySelector(part)) { throw new Error("the canvas's part is missing: " + part); }
        }
        if (getComputedStyle(canvas).display !== "flex") { throw new Error("the canvas's styles did not load"); }
        const input = document.querySelector(".o-llm-composer-area .o-mail-Composer-input");
        input.focus();
        input.value = "a lighthouse, loaded lazily";
        input.dispatchEvent(new InputEvent("input", { bubbles: true }));
        await waitFor("a drawn frame", () => canvas.dataset.state === "open" && Number(canvas.dataset.frames) > 0);
""")


@tagged("post_install", "-at_install")
class TestLazyBundle(FalRealtimeCase):
    def test_only_a_realtime_thread_loads_the_client_and_the_canvas(self):
        """Discuss, a form and a plain thread fetch none of the canvas's bundle; a realtime thread loads it, draws."""
        self.require_relay()
        code = LAZY_SCRIPT % {"thread_id": self.thread.id, "plain_thread_id": self.plain_thread.id,
                              "partner_id": self.owner.partner_id.id}
        self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_owner", timeout=90)
