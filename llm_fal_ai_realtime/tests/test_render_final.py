"""Render final: the frame's prompt and seed go to fal through llm_fal_ai's generation job path.

fal's cloud is out of reach here, so the one stand-in is ``fal_client.submit``, the last call
before the network: it records what llm_fal_ai hands it and either acknowledges the request the
way fal's queue does (a request id, no image) or fails the way an unreachable cloud does. Nothing
here produces a finished image, and the tests check that nothing tells the user there is one.
"""

import json
from types import SimpleNamespace
from unittest.mock import patch

import fal_client
import httpx

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import FalRealtimeCase, browser_test_script

ROUTE = "/llm_fal_ai_realtime/render_final"
UNREACHABLE = "[Errno -3] Temporary failure in name resolution"
# The seed logs a submission that failed as an ERROR; these tests cause it on purpose.
SEED_LOGGERS = (
    "odoo.addons.llm_fal_ai.models.fal_ai_provider",
    "odoo.addons.llm_generate_job.models.llm_generation_queue",
)


class FalQueue:
    """``fal_client.submit``'s place: records each call, then acknowledges it or fails like the network."""

    def __init__(self, error=None):
        self.calls = []
        self.error = error

    def submit(self, application, arguments, **kwargs):
        self.calls.append({"application": application, "arguments": arguments, **kwargs})
        if self.error:
            raise self.error
        return SimpleNamespace(request_id=f"request-{len(self.calls)}")


def assert_no_image_claimed(case, thread):
    """No assistant message and no image in the thread: only fal's finished job may bring them."""
    case.assertFalse(thread.message_ids.filtered(lambda message: message.llm_role == "assistant"))
    case.assertFalse(thread.message_ids.attachment_ids)


@tagged("post_install", "-at_install")
class TestRenderFinal(FalRealtimeCase):
    def render(self, queue, login="rt_owner", **params):
        self.authenticate(login, login)
        with patch.object(fal_client, "submit", queue.submit), mute_logger(*SEED_LOGGERS):
            return self.jsonrpc(ROUTE, params)

    def test_render_final_submits_prompt_and_seed_as_a_generation_job(self):
        """Render final queues an llm.generation.job whose submission hands fal exactly the prompt and seed."""
        queue = FalQueue()
        result = self.render(queue, thread_id=self.lcm_thread.id, prompt="a lighthouse at dusk", seed=1234)["result"]
        job = self.env["llm.generation.job"].browse(result["job_id"])
        self.assertEqual(len(queue.calls), 1)
        call = queue.calls[0]
        self.assertEqual(call["application"], "fal-ai/fast-lcm-diffusion", "the model's normal (queue) endpoint")
        self.assertEqual(call["arguments"], {"prompt": "a lighthouse at dusk", "seed": 1234},
                         "only fields the normal endpoint accepts: no thread context, no realtime-only fields")
        self.assertEqual(call["webhook_url"], f"http://odoo.test/llm_fal_ai_realtime/final/{job.id}/webhook",
                         "this addon's verified webhook, not llm_generate_job's open one")
        self.assertEqual(result["state"], "running")
        self.assertEqual(result["error"], "")
        self.assertEqual((job.state, job.thread_id, job.model_id, job.user_id),
                         ("running", self.lcm_thread, self.lcm_model, self.owner))
        self.assertEqual(json.loads(job.external_job_id)["request_id"], "request-1")
        self.assertEqual(job.generation_inputs, {"prompt": "a lighthouse at dusk", "seed": 1234})
        message = job.input_message_id
        self.assertEqual(message.id, result["message_id"])
        self.assertEqual((message.author_id, message.llm_role), (self.owner.partner_id, "user"))
        self.assertIn("a lighthouse at dusk", str(message.body))
        self.assertIn("seed 1234", str(message.body))
        self.assertEqual([m["id"] for m in result["store"]["mail.message"]], [message.id])
        self.assertFalse(job.output_message_id)
        assert_no_image_claimed(self, self.lcm_thread)
        # The model got no queue from it: its chat replies keep the path they had.
        self.assertFalse(self.env["llm.generation.queue"].search([("model_id", "=", self.lcm_model.id)]))

    def test_render_final_respects_the_models_queue(self):
        """A model that has a queue gets the job through it, within the queue's limits."""
        self.env["llm.generation.queue"].create({"model_id": self.lcm_model.id, "max_concurrent_jobs": 1})
        queue = FalQueue()
        first = self.render(queue, thread_id=self.lcm_thread.id, prompt="a kite", seed=1)["result"]
        second = self.render(queue, thread_id=self.lcm_thread.id, prompt="a kite", seed=2)["result"]
        self.assertEqual((first["state"], second["state"]), ("running", "queued"))
        self.assertEqual([call["arguments"]["seed"] for call in queue.calls], [1])

    def test_render_final_reports_that_fal_could_not_be_reached(self):
        """When fal cannot be reached the job fails, and the answer says so with the network's reason."""
        queue = FalQueue(error=httpx.ConnectError(UNREACHABLE))
        result = self.render(queue, thread_id=self.lcm_thread.id, prompt="a red fox", seed=7)["result"]
        self.assertEqual([call["arguments"] for call in queue.calls], [{"prompt": "a red fox", "seed": 7}])
        self.assertEqual(result["state"], "failed")
        self.assertIn(UNREACHABLE, result["error"])
        job = self.env["llm.generation.job"].browse(result["job_id"])
        self.assertEqual(job.state, "failed")
        self.assertIn(UNREACHABLE, job.error_message)
        assert_no_image_claimed(self, self.lcm_thread)

    def test_render_final_refusals(self):
        """No final render for the embedded preview, non-realtime models, readers who may not post, or no prompt."""
        queue = FalQueue()
        response = self.render(queue, thread_id=self.thread.id, prompt="a castle", seed=1)
        self.assertRpcError(response, "odoo.exceptions.UserError", "only renders live frames")
        response = self.render(queue, thread_id=self.plain_thread.id, prompt="a castle", seed=1)
        self.assertRpcError(response, "odoo.exceptions.UserError", "no live preview to render")
        response = self.render(queue, thread_id=self.lcm_thread.id, prompt="  ", seed=1)
        self.assertRpcError(response, "odoo.exceptions.UserError", "the final render needs one")
        response = self.render(queue, thread_id=self.lcm_thread.id, prompt="a castle", seed=-1)
        self.assertRpcError(response, "odoo.exceptions.UserError", "seed must be a non-negative integer")
        self.lcm_thread.sudo().message_subscribe(partner_ids=self.follower.partner_id.ids)
        response = self.render(queue, login="rt_follower", thread_id=self.lcm_thread.id, prompt="a castle", seed=1)
        self.assertRpcError(response, "odoo.exceptions.AccessError", "")
        self.assertEqual(queue.calls, [])
        threads = (self.thread | self.plain_thread | self.lcm_thread).ids
        self.assertFalse(self.env["llm.generation.job"].search([("thread_id", "in", threads)]))

    def test_generation_inputs_keep_only_what_the_normal_endpoint_accepts(self):
        """Realtime-only fields and the thread context never reach fal's normal endpoint."""
        inputs = {"prompt": "x", "seed": 3, "strength": 0.5, "width": 512, "height": 512, "image_bytes": "..",
                  "num_inference_steps": 6}
        prepared = self.lcm_thread.with_user(self.owner).prepare_generation_inputs(inputs)
        self.assertEqual(prepared, {"prompt": "x", "seed": 3, "num_inference_steps": 6})
        self.lcm_model.details = {"realtime": {"app_id": "fal-ai/fast-lcm-diffusion"}}  # typed by hand: no schema
        prepared = self.lcm_thread.with_user(self.owner).prepare_generation_inputs(inputs)
        self.assertEqual(prepared, {"prompt": "x", "seed": 3})

    def test_local_preview_has_no_final_render_from_the_composer_either(self):
        """The embedded preview app has no final render: the user is told to Keep instead."""
        message = self.thread.with_user(self.owner).message_post(body="a castle", llm_role="user",
                                                                 author_id=self.owner.partner_id.id)
        with self.assertRaisesRegex(UserError, "only renders live frames"):
            list(self.thread.with_user(self.owner)._generate_response(message))

    def test_composer_prompt_becomes_the_generation_input(self):
        """A composer message in a fal realtime thread renders with its text as the prompt."""
        message = self.lcm_thread.with_user(self.owner).message_post(body="a castle <at> night", llm_role="user",
                                                                     author_id=self.owner.partner_id.id)
        inputs = self.lcm_thread.with_user(self.owner)._fal_realtime_final_inputs(message)
        self.assertEqual(inputs, {"prompt": "a castle <at> night"})
        kept = self.lcm_thread.with_user(self.owner).message_post(body="x", llm_role="user",
                                                                  body_json={"prompt": "from keep", "seed": 3})
        self.assertEqual(self.lcm_thread._fal_realtime_final_inputs(kept), {"prompt": "from keep", "seed": 3})
        empty = self.lcm_thread.with_user(self.owner).message_post(body="", llm_role="user",
                                                                   author_id=self.owner.partner_id.id)
        with self.assertRaisesRegex(UserError, "needs one"):
            self.lcm_thread._fal_realtime_final_inputs(empty)


# Runs in the Odoo page: a fal realtime thread (the test relay serves no fal app, so the canvas shows
# the relay's error), a prompt in the composer, a click on Render final, and the failure in words.
RENDER_FINAL_SCRIPT = browser_test_script("render final", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        const input = document.querySelector(".o-llm-composer-area .o-mail-Composer-input");
        input.focus();
        input.value = "a lighthouse at dusk";
        input.dispatchEvent(new InputEvent("input", { bubbles: true }));
        const button = await waitFor("Render final, enabled", () => {
            const el = canvas.querySelector(".o_live_canvas_render");
            return el && !el.disabled && el;
        });
        button.click();
        const said = await waitFor("the failure",
                                   () => canvas.querySelector(".o_live_canvas_final_failure")?.textContent);
        if (!said.includes("The last final render failed") || !said.includes(%(unreachable)s)) {
            throw new Error("unexpected answer: " + said);
        }
        if (document.querySelector(".o_notification")?.textContent.includes("Rendering at full quality")) {
            throw new Error("a render fal did not take must not be announced as under way");
        }
        await waitFor("the request in the thread", () => [...document.querySelectorAll(".o-mail-Message")]
            .some((el) => el.textContent.includes("Render final")));
""")


@tagged("post_install", "-at_install")
class TestRenderFinalInTheChat(FalRealtimeCase):
    def test_clicking_render_final_submits_the_job_and_shows_why_it_failed(self):
        """Clicking Render final in the chat sends {prompt, seed} to fal's submit; the user reads why it failed."""
        self.require_relay()
        queue = FalQueue(error=httpx.ConnectError(UNREACHABLE))
        code = RENDER_FINAL_SCRIPT % {"thread_id": self.lcm_thread.id, "unreachable": json.dumps(UNREACHABLE)}
        with patch.object(fal_client, "submit", queue.submit), mute_logger(*SEED_LOGGERS):
            self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_owner", timeout=90)
        self.assertEqual([(call["application"], call["arguments"]) for call in queue.calls],
                         [("fal-ai/fast-lcm-diffusion", {"prompt": "a lighthouse at dusk", "seed": 42})])
        job = self.env["llm.generation.job"].search([("thread_id", "=", self.lcm_thread.id)])
        self.assertEqual(job.mapped("state"), ["failed"])
        assert_no_image_claimed(self, self.lcm_thread)
