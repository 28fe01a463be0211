import json
import os

from odoo.tests import HttpCase, new_test_user

from odoo.addons.llm_fal_ai_realtime.models.llm_provider import REALTIME_MODELS, realtime_model_details

RELAY_URL_ENV = "FAL_REALTIME_TEST_RELAY_URL"
RELAY_SECRET_ENV = "FAL_REALTIME_TEST_RELAY_SECRET"
FALLBACK_SECRET = "odoo-test-secret-0123456789abcdef-0123456789"


class FalRealtimeCase(HttpCase):
    """Users, a fal provider, realtime and plain models and threads, and relay settings.

    The relay URL and secret come from ``scripts/test-odoo``, which starts a real relay;
    tests that talk to it fail (never skip) when it is missing.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.relay_url = os.environ.get(RELAY_URL_ENV, "")
        cls.secret = os.environ.get(RELAY_SECRET_ENV) or FALLBACK_SECRET
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param("web.base.url", "http://odoo.test")
        params.set_param("llm_fal_ai_realtime.relay_url", cls.relay_url or "https://relay.example.com")
        params.set_param("llm_fal_ai_realtime.shared_secret", cls.secret)
        params.set_param("llm_fal_ai_realtime.allowed_apps", "local/preview, fal-ai/fast-lcm-diffusion")
        params.set_param("llm_fal_ai_realtime.ticket_lifetime", "120")

        cls.owner = new_test_user(cls.env, login="rt_owner", groups="base.group_user", name="Realtime Owner")
        cls.follower = new_test_user(cls.env, login="rt_follower", groups="base.group_user", name="Realtime Follower")
        cls.stranger = new_test_user(cls.env, login="rt_stranger", groups="base.group_user", name="Realtime Stranger")

        cls.provider = cls.env["llm.provider"].create({
            "name": "fal realtime test provider",
            "service": "fal_ai",
            "api_key": "fal-test-key-not-used",
        })
        # The realtime models as Fetch Models imports them.
        Model = cls.env["llm.model"]
        realtime = {
            app: Model.create({
                "name": app,
                "provider_id": cls.provider.id,
                "model_use": "image_generation",
                "details": realtime_model_details(app, description, final_steps),
            })
            for app, description, final_steps in REALTIME_MODELS
        }
        cls.preview_model = realtime["local/preview"]
        cls.turbo_model = realtime["fal-ai/fast-turbo-diffusion"]
        cls.lcm_model = realtime["fal-ai/fast-lcm-diffusion"]
        cls.plain_model = Model.create({
            "name": "fal-ai/flux/dev",
            "provider_id": cls.provider.id,
            "model_use": "image_generation",
            "details": {},
        })
        Thread = cls.env["llm.thread"]
        cls.thread = Thread.with_user(cls.owner).create({
            "name": "Live thread",
            "provider_id": cls.provider.id,
            "model_id": cls.preview_model.id,
        })
        cls.thread.sudo().message_subscribe(partner_ids=cls.follower.partner_id.ids)
        cls.other_thread = Thread.with_user(cls.owner).create({
            "name": "Another live thread",
            "provider_id": cls.provider.id,
            "model_id": cls.preview_model.id,
        })
        cls.lcm_thread = Thread.with_user(cls.owner).create({
            "name": "fal LCM thread",
            "provider_id": cls.provider.id,
            "model_id": cls.lcm_model.id,
        })
        cls.plain_thread = Thread.with_user(cls.owner).create({
            "name": "Plain thread",
            "provider_id": cls.provider.id,
            "model_id": cls.plain_model.id,
        })

    def jsonrpc(self, route, params):
        """POST a JSON-RPC call as the authenticated user; return the decoded response (result or error)."""
        response = self.url_open(
            route,
            data=json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(response.status_code, 200)
        return response.json()

    def assertRpcError(self, response, exception_name, message_part):
        """The response is a JSON-RPC error of that exception class whose message contains ``message_part``."""
        self.assertIn("error", response, f"expected an error, got {response}")
        data = response["error"]["data"]
        self.assertEqual(data["name"], exception_name)
        self.assertIn(message_part, data["message"])

    def require_relay(self):
        """The real relay started by scripts/test-odoo; a clear failure when it is missing."""
        self.assertTrue(self.relay_url, f"{RELAY_URL_ENV} is not set: run the Odoo tests through scripts/test-odoo, "
                        "which starts a real relay for them")
        return self.relay_url


def browser_test_script(name, body):
    """Wrap `body` (JS statements run in the Odoo page) as a browser test for ``browser_js``.

    The body may ``await waitFor(what, test)`` and throws to fail; the wrapper logs
    "test successful" or the error, which is what ``browser_js`` waits for.

    :param name: what the test is, for its failure message
    :param body: JS statements, indented for a try block
    """
    return (
        "(async () => {\n"
        "    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));\n"
        "    async function waitFor(what, test, timeoutMs = 20000) {\n"
        "        const deadline = Date.now() + timeoutMs;\n"
        "        while (Date.now() < deadline) {\n"
        "            const value = test();\n"
        "            if (value) { return value; }\n"
        "            await sleep(100);\n"
        "        }\n"
        '        throw new Error("timed out waiting for " + what);\n'
        "    }\n"
        "    try {\n"
        f"{body}"
        # The page closes once the test says so: a canvas bundle still loading then fails noisily.
        '        await waitFor("the live canvas bundle, once asked for", () =>\n'
        "            !document.querySelector('script[src*=\"llm_fal_ai_realtime.live_canvas\"]')\n"
        '            || odoo.loader.modules.has("@llm_fal_ai_realtime/chat/chat_live_canvas"));\n'
        '        console.log("test successful");\n'
        "    } catch (error) {\n"
        f'        console.error("{name} test failed: " + error.message);\n'
        "    }\n"
        "})();\n"
    )
