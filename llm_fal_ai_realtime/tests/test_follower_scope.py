"""Followers read live canvases only: an ordinary AI chat stays its owner's, whoever follows it.

The follower is subscribed to the owner's ordinary (non-realtime) chat the way a mention or an
automation would subscribe them, and to the owner's live canvas; they try to read both over
JSON-RPC, XML-RPC and in their own web client.
"""

import importlib.util
import xmlrpc.client
from pathlib import Path

from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import FalRealtimeCase, browser_test_script

MIGRATION = Path(__file__).parent.parent / "migrations" / "18.0.1.2.0" / "post-migrate.py"
OLD_FOLLOWER_DOMAIN = "[('message_partner_ids', 'in', [user.partner_id.id])]"
SECRET_NOTES = "salary review notes for the board"

# Runs in the follower's Odoo page: the chat lists the live canvas, not the ordinary chat, which is unreadable.
FOLLOWER_SCRIPT = browser_test_script("follower's chat list", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(live_id)s" },
        });
        const names = () => env.services["llm.store"].llmThreadList.map((thread) => thread.name);
        await waitFor("the live canvas in the chat list", () => names().includes("Live thread"));
        // Its canvas is up (its bundle loaded), so the test does not end while the page still loads it.
        await waitFor("the live thread's canvas", () => document.querySelector(".o_live_canvas"));
        if (names().includes("Plain thread")) {
            throw new Error("an ordinary chat the follower only follows is listed: " + names().join(", "));
        }
        if (document.body.textContent.includes(%(secret)s)) {
            throw new Error("the ordinary chat's content reached the follower's page");
        }
        try {
            await env.services.orm.read("llm.thread", [%(plain_id)s], ["name"]);
        } catch (error) {
            if (error.data?.name !== "odoo.exceptions.AccessError") {
                throw new Error("refused, but not as an access error: " + (error.data?.name || error.message));
            }
            return console.log("test successful");
        }
        throw new Error("the follower read the ordinary chat");
""")


@tagged("post_install", "-at_install")
class TestFollowersReadLiveCanvasesOnly(FalRealtimeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plain_thread.with_user(cls.owner).message_post(body=SECRET_NOTES, llm_role="user")
        cls.plain_thread.sudo().message_subscribe(partner_ids=cls.follower.partner_id.ids)

    def test_follower_cannot_read_an_ordinary_chat_they_follow(self):
        """Over the ORM, JSON-RPC and XML-RPC the follower reads the live canvas, never the ordinary chat."""
        Thread = self.env["llm.thread"].with_user(self.follower)
        self.assertEqual(Thread.search([("id", "in", (self.thread | self.plain_thread).ids)]), self.thread)
        self.authenticate("rt_follower", "rt_follower")
        with mute_logger("odoo.http"):
            answer = self.jsonrpc("/web/dataset/call_kw/llm.thread/read", {
                "model": "llm.thread", "method": "read", "args": [[self.plain_thread.id], ["name"]], "kwargs": {}})
            self.assertRpcError(answer, "odoo.exceptions.AccessError", "")
            answer = self.jsonrpc("/mail/thread/messages", {"thread_model": "llm.thread",
                                                            "thread_id": self.plain_thread.id, "limit": 30})
        self.assertNotIn(SECRET_NOTES, str(answer))
        with mute_logger("odoo.http"), self.assertRaisesRegex(xmlrpc.client.Fault, "AccessError|access"):
            self.xmlrpc_object.execute_kw(self.env.cr.dbname, self.follower.id, "rt_follower", "llm.thread", "read",
                                          [[self.plain_thread.id], ["name"]])
        found = self.xmlrpc_object.execute_kw(self.env.cr.dbname, self.follower.id, "rt_follower", "llm.thread",
                                              "search", [[]])
        self.assertIn(self.thread.id, found)
        self.assertNotIn(self.plain_thread.id, found)

    def test_chat_list_loads_followed_live_canvases_only(self):
        """The threads loaded into the follower's chat are the live canvases they follow, not ordinary chats."""
        self.authenticate("rt_follower", "rt_follower")
        data = self.make_jsonrpc_request("/mail/data", {"init_messaging": {}})
        loaded = {item["id"] for records in data.values() if isinstance(records, list)
                  for item in records if isinstance(item, dict) and item.get("model") == "llm.thread"}
        self.assertIn(self.thread.id, loaded)
        self.assertNotIn(self.plain_thread.id, loaded)
        self.assertNotIn(SECRET_NOTES, str(data))

    def test_follower_in_the_browser(self):
        """In the follower's own web client: the live canvas is listed, the ordinary chat is neither listed nor read."""
        code = FOLLOWER_SCRIPT % {"live_id": self.thread.id, "plain_id": self.plain_thread.id,
                                  "secret": f'"{SECRET_NOTES}"'}
        with mute_logger("odoo.http"):
            self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_follower", timeout=90)

    def test_upgrade_limits_the_follower_rule(self):
        """An older database's rule (every followed thread) is limited to live canvases by the upgrade."""
        rule = self.env.ref("llm_fal_ai_realtime.llm_thread_rule_follower_read")
        rule.domain_force = OLD_FOLLOWER_DOMAIN
        self.assertTrue(self.env["llm.thread"].with_user(self.follower).search([("id", "=", self.plain_thread.id)]),
                        "the old rule opened the ordinary chat")
        spec = importlib.util.spec_from_file_location("llm_fal_ai_realtime_post_migrate_1_2_0", MIGRATION)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        migration.migrate(self.env.cr, "18.0.1.1.1")
        rule.invalidate_recordset()
        self.env.registry.clear_cache()
        self.assertIn("model_id.is_realtime", rule.domain_force)
        self.assertFalse(self.env["llm.thread"].with_user(self.follower).search([("id", "=", self.plain_thread.id)]))
        self.assertTrue(self.env["llm.thread"].with_user(self.follower).search([("id", "=", self.thread.id)]))
