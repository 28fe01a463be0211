"""Render final as the user lives it: checked before it goes, pending with the time it takes, a failure
that stays on the thread (its message, and the canvas with Retry) after a reload.

fal is stood in for at ``fal_client.submit``, the last call before the network: one that never
answers until the test lets it time out, one that acknowledges the request as fal's queue does.
"""

import threading
from types import SimpleNamespace
from unittest.mock import patch

import fal_client
import httpx

from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import FalRealtimeCase, browser_test_script
from .test_render_final import SEED_LOGGERS

HANG_SECONDS = 8


class SilentFal:
    """``fal_client.submit`` of a fal that does not answer: each call hangs, then times out.

    ``answer()`` makes later calls acknowledge the request the way fal's queue does.
    """

    def __init__(self):
        self.calls = []
        self.answers = False
        self.released = threading.Event()

    def submit(self, application, arguments, **kwargs):
        self.calls.append({"application": application, "arguments": arguments})
        if self.answers:
            return SimpleNamespace(request_id=f"request-{len(self.calls)}")
        self.released.wait(HANG_SECONDS)
        raise httpx.ReadTimeout("fal.ai did not answer in time")


OPEN_LCM = """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        let canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        const input = document.querySelector(".o-llm-composer-area .o-mail-Composer-input");
        input.focus();
        input.value = "a lighthouse at dusk";
        input.dispatchEvent(new InputEvent("input", { bubbles: true }));
        const render = await waitFor("Render final, enabled", () => {
            const el = canvas.querySelector(".o_live_canvas_render");
            return el && !el.disabled && el;
        });
"""

NO_KEY_SCRIPT = browser_test_script("render final without a key", OPEN_LCM + """
        render.click();
        const said = await waitFor("what to fix", () => canvas.querySelector(".o_live_canvas_keep_error")?.textContent);
        if (!said.includes("set the fal.ai API key") || !said.includes("LLM > Configuration > Providers")) {
            throw new Error("unexpected message: " + said);
        }
""")

PENDING_SCRIPT = browser_test_script("render final pending", OPEN_LCM + """
        render.click();
        await waitFor("the elapsed time", () => /Rendering… [2-9] s/.test(render.textContent));
        const stop = canvas.querySelector(".o_live_canvas_stop_waiting");
        if (!stop) { throw new Error("a pending render can be let go"); }
        stop.click();
        await waitFor("Render final again", () => render.textContent.trim() === "Render final" && !render.disabled,
            1000);
        if (canvas.querySelector(".o_live_canvas_keep_error")) { throw new Error("letting go is no error"); }
        // Another thread and back: the canvas now knows the render failed, and offers Retry.
        await env.services["llm.store"].selectThread(%(other_thread_id)s);
        await waitFor("the other thread", () => !document.querySelector(".o_live_canvas"), 30000);
        await env.services["llm.store"].selectThread(%(thread_id)s);
        await waitFor("the failure with Retry", () =>
            document.querySelector(".o_live_canvas_final_failure .o_live_canvas_retry_final")
            && document.querySelector(".o_live_canvas_final_failure").textContent.includes("did not answer in time"),
                30000);
""")

RETRY_SCRIPT = browser_test_script("render final retry", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const failure = await waitFor("the failure, after a reload", () =>
            document.querySelector(".o_live_canvas_final_failure"));
        if (!failure.textContent.includes("did not answer in time")) { throw new Error("unexpected: "
            + failure.textContent); }
        await waitFor("the failed request marked in the thread", () => [...document.querySelectorAll(".o-mail-Message")]
            .some((el) => el.querySelector(".o_live_canvas_final_failed")?.textContent
                .includes("Final render failed")));
        failure.querySelector(".o_live_canvas_retry_final").click();
        await waitFor("the failure gone", () => !document.querySelector(".o_live_canvas_final_failure"));
        await waitFor("the render under way", () =>
            document.querySelector(".o_notification")?.textContent.includes("Rendering at full quality"));
""")


@tagged("post_install", "-at_install")
class TestRenderFinalStates(FalRealtimeCase):
    def test_render_final_without_a_key_says_what_to_fix_and_where(self):
        """With no fal.ai key nothing is submitted or posted, and the user reads where to set it."""
        self.require_relay()
        self.provider.api_key = False
        silent = SilentFal()
        code = NO_KEY_SCRIPT % {"thread_id": self.lcm_thread.id}
        with patch.object(fal_client, "submit", silent.submit):
            self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_owner", timeout=90)
        self.assertEqual(silent.calls, [])
        self.assertFalse(self.lcm_thread.message_ids.filtered(lambda message: message.llm_role))
        self.assertFalse(self.env["llm.generation.job"].search([("thread_id", "=", self.lcm_thread.id)]))

    def test_a_render_fal_does_not_answer_shows_its_time_fails_on_the_thread_and_retries(self):
        """Pending shows its elapsed time and can be let go; the failure is marked and survives a reload; Retry."""
        self.require_relay()
        silent = SilentFal()
        with patch.object(fal_client, "submit", silent.submit), mute_logger(*SEED_LOGGERS):
            code = PENDING_SCRIPT % {"thread_id": self.lcm_thread.id, "other_thread_id": self.plain_thread.id}
            self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_owner", timeout=120)
            request = self.env["llm.generation.job"].search([("thread_id", "=", self.lcm_thread.id)]).input_message_id
            self.assertTrue(request.is_error)
            self.assertIn("Final render failed", str(request.body))
            silent.answers = True
            self.browser_js("/odoo", RETRY_SCRIPT % {"thread_id": self.lcm_thread.id}, ready="odoo.isReady",
                            login="rt_owner", timeout=90)
        self.assertEqual([call["arguments"] for call in silent.calls],
                         [{"prompt": "a lighthouse at dusk", "seed": 42}] * 2, "Retry sends the same prompt and seed")
        jobs = self.env["llm.generation.job"].search([("thread_id", "=", self.lcm_thread.id)], order="id")
        self.assertEqual(jobs.mapped("state"), ["failed", "running"])
