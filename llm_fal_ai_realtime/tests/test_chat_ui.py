from odoo.tests import tagged

from .common import FalRealtimeCase, browser_test_script

# Runs in the Odoo page: opens the LLM chat on a thread, types into the composer and waits for
# the live canvas to draw frames from the real relay; then switches to a plain thread.
CHAT_SCRIPT = browser_test_script("live canvas chat", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        if (getComputedStyle(canvas).display !== "flex") {
            throw new Error("the live canvas styles (SCSS) did not load");
        }
        const composerArea = document.querySelector(".o-llm-composer-area");
        if (!composerArea || !composerArea.querySelector(".o-mail-Composer-input")) {
            throw new Error("the composer must stay visible next to the live canvas");
        }
        if (canvas.compareDocumentPosition(composerArea) !== Node.DOCUMENT_POSITION_FOLLOWING
                || canvas.contains(composerArea)) {
            throw new Error("the live canvas must sit before the composer area, not over it");
        }
        const input = composerArea.querySelector(".o-mail-Composer-input");
        input.focus();
        input.value = "a lighthouse at dusk";
        input.dispatchEvent(new InputEvent("input", { bubbles: true }));
        await waitFor("live status", () => canvas.dataset.state === "open");
        await waitFor("a drawn frame", () => Number(canvas.dataset.frames) > 0);
        const pixel = canvas.querySelector("canvas").getContext("2d").getImageData(128, 128, 1, 1).data;
        if (pixel[3] === 0) { throw new Error("the canvas is still blank"); }
        if (!canvas.querySelector(".o_live_canvas_keep") || canvas.querySelector(".o_live_canvas_keep").disabled) {
            throw new Error("Keep must be enabled once a frame is drawn");
        }
        // Keep: the frame shows in the thread at once, as an image, with the prompt.
        canvas.querySelector(".o_live_canvas_keep").click();
        const kept = await waitFor("the kept image in the thread", () => {
            const image = document.querySelector(".o-llm-thread-area .o-mail-Message .o-mail-AttachmentImage img");
            return image && image.closest(".o-mail-Message");
        });
        if (!kept.textContent.includes("a lighthouse at dusk") || !kept.textContent.includes("seed 42")) {
            throw new Error("the kept message must carry the prompt and seed: " + kept.textContent);
        }
        if (canvas.querySelector(".o_live_canvas_render")) {
            throw new Error("local/preview has no final render, so no Render final button");
        }
        // A fal model this relay does not serve (no FAL_KEY): what fixes it, in words, and the relay's reason.
        await env.services["llm.store"].selectThread(%(lcm_thread_id)s);
        const lcm = await waitFor("the error state", () => {
            const el = document.querySelector(".o_live_canvas");
            return el && el.dataset.state === "error" && el;
        });
        const said = lcm.querySelector(".o_live_canvas_error_message").textContent;
        if (!said.includes("does not run on this preview server") || !said.includes("FAL_KEY")) {
            throw new Error("unexpected error message: " + said);
        }
        if (!lcm.querySelector(".o_live_canvas_error_reason").textContent.startsWith("APP_NOT_ALLOWED: ")) {
            throw new Error("the relay's code and reason must be shown");
        }
        if (!lcm.querySelector(".o_live_canvas_render")) {
            throw new Error("fal realtime models offer Render final");
        }
        await env.services["llm.store"].selectThread(%(plain_thread_id)s);
        await waitFor("the live canvas to go away", () => !document.querySelector(".o_live_canvas"));
""")


@tagged("post_install", "-at_install")
class TestChatShowsLiveCanvas(FalRealtimeCase):
    def test_chat_shows_live_canvas_for_realtime_model(self):
        """The chat shows the live canvas next to the composer for a realtime model, and it draws frames."""
        self.require_relay()
        code = CHAT_SCRIPT % {"thread_id": self.thread.id, "plain_thread_id": self.plain_thread.id,
                              "lcm_thread_id": self.lcm_thread.id}
        self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_owner", timeout=90)


VIEWER_SCRIPT = browser_test_script("viewer chat", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        // Connected, and nobody draws yet: the viewer waits, calmly.
        const canvas = await waitFor("the live canvas, connected and waiting", () => {
            const el = document.querySelector(".o_live_canvas");
            return el && el.dataset.state === "waiting" && el;
        });
        if (canvas.dataset.role !== "viewer") { throw new Error("a follower must watch as viewer"); }
        if (canvas.querySelector(".o_live_canvas_keep") || canvas.querySelector(".o_live_canvas_controls")) {
            throw new Error("viewers get neither Keep nor controls");
        }
        // The owner has no canvas open: nobody draws, so the pen is free, and the line says so.
        if (!canvas.textContent.includes("The pen is free: take it to draw")
            || canvas.querySelector(".o_live_canvas_error")) {
            throw new Error("unexpected viewer canvas: " + canvas.textContent);
        }
        // The owner has no canvas open: nobody draws, so the pen is free to take rather than to ask for.
        const take = await waitFor("Take the pen", () => canvas.querySelector(".o_live_canvas_take_pen"));
        if (take.textContent.trim() !== "Take the pen" || canvas.querySelector(".o_live_canvas_ask_pen")) {
            throw new Error("a free pen is taken, not asked for: " + canvas.textContent);
        }
""")


@tagged("post_install", "-at_install")
class TestChatViewer(FalRealtimeCase):
    def test_follower_watches_the_thread_as_viewer(self):
        """A follower finds the shared thread in the chat and watches read-only; nobody drawing, the pen is free."""
        self.require_relay()
        self.browser_js("/odoo", VIEWER_SCRIPT % {"thread_id": self.thread.id}, ready="odoo.isReady",
                        login="rt_follower", timeout=90)
