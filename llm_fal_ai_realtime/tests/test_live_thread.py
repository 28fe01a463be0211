"""A realtime thread as a chat user meets it: the composer, viewers who wait, comments and the pen.

The browser parts run in Odoo's Chromium against the real relay started by scripts/test-odoo. Where a
second person has to act while the page under test watches (the driver leaving and coming back, a
new pen holder drawing), that person is the one browser client (``static/fal_realtime.js``, imported
from the relay) in the same page, with tickets Odoo minted for them.
"""

import json
from types import SimpleNamespace
from unittest.mock import patch

import fal_client

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import FalRealtimeCase, browser_test_script


class FalQueue:
    """``fal_client.submit``'s place: any call is a generation the composer must not have started."""

    def __init__(self):
        self.calls = []

    def submit(self, application, arguments, **kwargs):
        self.calls.append({"application": application, "arguments": arguments})
        return SimpleNamespace(request_id=f"request-{len(self.calls)}")


OPEN_CHAT = """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const composer = await waitFor("the composer", () =>
            document.querySelector(".o-llm-composer-area .o-mail-Composer-input"));
        function type(text) {
            composer.focus();
            composer.value = text;
            composer.dispatchEvent(new InputEvent("input", { bubbles: true }));
        }
        function pressEnter() {
            composer.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true }));
        }
        const sendButton = () => document.querySelector(".o-llm-composer-area .o-mail-Composer-send");
"""

# The owner's Enter keeps the frame (local/preview), never generates, and the text stays; in a fal
# realtime thread whose canvas has no frame (the test relay serves no fal app) Enter says there is
# nothing to keep yet, and again the text stays.
DRIVER_ENTER_SCRIPT = browser_test_script("driver enter", OPEN_CHAT + """
        const canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        await waitFor("the send button says Keep", () => sendButton()?.getAttribute("aria-label") === "Keep");
        if (!sendButton().title.includes("Keep (Enter)")) {
            throw new Error("the send button must say what Enter does: " + sendButton().title);
        }
        type("a lighthouse at dusk");
        await waitFor("a drawn frame", () => Number(canvas.dataset.frames) > 0);
        pressEnter();
        const kept = await waitFor("the kept image in the thread", () => {
            const image = document.querySelector(".o-llm-thread-area .o-mail-Message .o-mail-AttachmentImage img");
            return image && image.closest(".o-mail-Message");
        });
        if (!kept.textContent.includes("a lighthouse at dusk")) {
            throw new Error("Enter must keep the frame with its prompt: " + kept.textContent);
        }
        if (composer.value !== "a lighthouse at dusk") {
            throw new Error("the typed text must stay in the composer, got: " + composer.value);
        }
        // The send button does the same as Enter.
        sendButton().click();
        await waitFor("a second kept frame", () =>
            document.querySelectorAll(".o-llm-thread-area .o-mail-Message .o-mail-AttachmentImage img").length === 2);
        if (document.querySelector(".o_notification_bar.bg-danger, .o_notification.border-danger")) {
            throw new Error("no error may show: " + document.querySelector(".o_notification").textContent);
        }
        // A fal realtime thread: no frame here, so Enter keeps nothing, says so, and the text stays.
        await env.services["llm.store"].selectThread(%(lcm_thread_id)s);
        const lcm = await waitFor("the fal canvas", () => {
            const el = document.querySelector(".o_live_canvas");
            return el && el !== canvas && el;
        });
        const lcmComposer = await waitFor("its composer", () =>
            document.querySelector(".o-llm-composer-area .o-mail-Composer-input"));
        await waitFor("Keep on the send button", () => sendButton()?.getAttribute("aria-label") === "Keep");
        lcmComposer.focus();
        lcmComposer.value = "a red fox";
        lcmComposer.dispatchEvent(new InputEvent("input", { bubbles: true }));
        lcmComposer.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true }));
        await waitFor("the notice", () =>
            lcm.querySelector(".o_live_canvas_keep_notice")?.textContent.includes("Nothing to keep yet"));
        await sleep(500);
        if (lcmComposer.value !== "a red fox") {
            throw new Error("the typed text must stay in the composer, got: " + lcmComposer.value);
        }
        if (document.querySelector(".o-llm-streaming-indicator")) {
            throw new Error("nothing may be generating");
        }
""")

# A follower's Enter posts a comment, says so on its button, and clears the composer once posted.
VIEWER_ENTER_SCRIPT = browser_test_script("viewer enter", OPEN_CHAT + """
        const canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        if (canvas.dataset.role !== "viewer") { throw new Error("a follower watches"); }
        await waitFor("the send button says Comment", () => sendButton()?.getAttribute("aria-label") === "Comment");
        if (!sendButton().title.includes("starts no generation")) {
            throw new Error("the send button must say what Enter does: " + sendButton().title);
        }
        if (canvas.textContent.includes("Keep")) {
            throw new Error("no tip may mention Keep to a viewer: " + canvas.textContent);
        }
        type("love the colours");
        pressEnter();
        await waitFor("the comment in the thread", () =>
            [...document.querySelectorAll(".o-llm-thread-area .o-mail-Message")]
            .some((el) => el.textContent.includes("love the colours")));
        await waitFor("the composer cleared", () => composer.value === "");
""")


@tagged("post_install", "-at_install")
class TestRealtimeComposer(FalRealtimeCase):
    def test_enter_keeps_the_frame_for_the_driver_in_both_kinds_of_realtime_thread(self):
        """Enter and Send keep the frame (local/preview) or say there is none yet (fal); no generation; text kept."""
        self.require_relay()
        queue = FalQueue()
        code = DRIVER_ENTER_SCRIPT % {"thread_id": self.thread.id, "lcm_thread_id": self.lcm_thread.id}
        with patch.object(fal_client, "submit", queue.submit):
            self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_owner", timeout=120)
        self.assertEqual(queue.calls, [], "the composer of a realtime thread starts no fal generation")
        threads = (self.thread | self.lcm_thread).ids
        self.assertFalse(self.env["llm.generation.job"].search([("thread_id", "in", threads)]))
        kept = self.thread.message_ids.filtered("attachment_ids")
        self.assertEqual(len(kept), 2)
        self.assertEqual(set(kept.mapped("body_json")[0]), {"prompt", "seed"})
        self.assertFalse(self.lcm_thread.message_ids.filtered(lambda message: message.llm_role))

    def test_a_followers_enter_posts_a_comment_that_starts_no_generation(self):
        """A follower's Enter posts a plain comment (no LLM role), never a prompt for a generation."""
        self.require_relay()
        queue = FalQueue()
        self.lcm_thread.sudo().message_subscribe(partner_ids=self.follower.partner_id.ids)
        with patch.object(fal_client, "submit", queue.submit):
            self.browser_js("/odoo", VIEWER_ENTER_SCRIPT % {"thread_id": self.lcm_thread.id}, ready="odoo.isReady",
                            login="rt_follower", timeout=90)
        comment = self.lcm_thread.message_ids.filtered(lambda message: "love the colours" in str(message.body))
        self.assertEqual(len(comment), 1)
        self.assertEqual((comment.author_id, comment.llm_role, comment.message_type),
                         (self.follower.partner_id, False, "comment"))
        self.assertEqual(queue.calls, [])
        self.assertFalse(self.env["llm.generation.job"].search([("thread_id", "=", self.lcm_thread.id)]))

    def test_generate_route_on_a_realtime_thread_keeps_the_text_as_a_comment(self):
        """llm_thread's generate path never errors in a realtime thread: the text becomes a comment."""
        events = list(self.thread.with_user(self.owner).generate("a castle at night"))
        self.assertEqual([event["type"] for event in events], ["message_create"])
        message = self.env["mail.message"].browse(events[0]["message"]["id"])
        self.assertIn("a castle at night", str(message.body))
        self.assertFalse(message.llm_role)
        self.assertEqual(list(self.thread.with_user(self.owner).generate("")), [])

    def test_comments_stay_in_the_chat_after_a_reload(self):
        """The chat's message fetch returns the comments (no LLM role) with the frames, not other notices."""
        comment = self.thread.with_user(self.follower).fal_realtime_comment("what a sky")
        self.authenticate("rt_owner", "rt_owner")
        result = self.jsonrpc("/mail/thread/messages", {"thread_model": "llm.thread", "thread_id": self.thread.id})
        ids = [message["id"] for message in result["result"]["data"]["mail.message"]]
        self.assertIn(comment.id, ids)
        created = self.thread.message_ids.filtered(lambda message: message.message_type == "notification")
        self.assertFalse(set(created.ids) & set(ids), "notifications stay out of the chat, as llm_thread has it")

    def test_comment_refusals(self):
        """A comment needs text, of sensible length, from someone who can read the thread."""
        with self.assertRaisesRegex(UserError, "Type a comment first"):
            self.thread.with_user(self.follower).fal_realtime_comment("   ")
        with self.assertRaisesRegex(UserError, "at most 4000 characters"):
            self.thread.with_user(self.follower).fal_realtime_comment("x" * 4001)
        with self.assertRaises(AccessError):
            self.thread.with_user(self.stranger).fal_realtime_comment("hello")
        self.authenticate("rt_follower", "rt_follower")
        response = self.jsonrpc("/llm_fal_ai_realtime/comment", {"thread_id": self.thread.id, "body": "x",
                                                                 "attachment_ids": "1,2"})
        self.assertRpcError(response, "odoo.exceptions.UserError", "attachment_ids must be a list")


# The follower watches; the driver (the owner's browser client, with tickets Odoo minted for the
# owner) draws, leaves as a reload does, and draws again. The viewer waits calmly and resumes by
# itself within 2 s of the driver's first new frame, on the same connection.
VIEWER_RESUMES_SCRIPT = browser_test_script("viewer resumes", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const canvas = await waitFor("the viewer canvas, waiting", () => {
            const el = document.querySelector(".o_live_canvas");
            return el && el.dataset.state === "waiting" && el;
        });
        const waiting = "The pen is free: take it to draw"; // the owner's page is not open: nobody holds the pen
        if (canvas.dataset.role !== "viewer" || !canvas.textContent.includes(waiting)) {
            throw new Error("unexpected viewer canvas: " + canvas.textContent);
        }
        const tickets = %(tickets)s;
        const { RealtimeClient } = await import(%(relay)s + "/static/fal_realtime.js");
        function drive(prompt) {
            const ticket = tickets.shift();
            const client = new RealtimeClient({ url: ticket.url, ticket: ticket.ticket });
            client.firstFrame = new Promise((resolve) => client.addEventListener("frame", () =>
                resolve(performance.now()), { once: true }));
            client.send({ prompt, seed: 7, strength: 0.5, num_inference_steps: 2, width: 256, height: 256 });
            return client;
        }
        let driver = drive("a lighthouse");
        await waitFor("the viewer watching live", () => canvas.dataset.state === "open"
            && Number(canvas.dataset.frames) > 0);
        const frames = Number(canvas.dataset.frames);
        driver.close(); // the owner reloads the page: their connection ends
        await waitFor("the viewer waiting again", () => canvas.dataset.state === "waiting");
        await sleep(1500);
        if (canvas.querySelector(".o_live_canvas_error") || canvas.dataset.state !== "waiting") {
            throw new Error("a driver leaving is no error: " + canvas.textContent);
        }
        if (!canvas.textContent.includes(waiting)) { throw new Error("say who the viewer waits for: "
            + canvas.textContent); }
        driver = drive("a lighthouse in the rain");
        const drawn = await driver.firstFrame;
        await waitFor("the viewer resuming", () => canvas.dataset.state === "open"
            && Number(canvas.dataset.frames) > frames, 5000);
        const late = performance.now() - drawn;
        if (late > 2000) { throw new Error("the viewer resumed " + Math.round(late) + " ms after the driver drew"); }
        driver.close();
""")


@tagged("post_install", "-at_install")
class TestViewerWaits(FalRealtimeCase):
    def owner_tickets(self, count):
        relay = self.env["llm.fal.realtime.relay"].with_user(self.owner)
        return [relay._issue_session(self.thread.id, self.preview_model.id) for _ in range(count)]

    def test_viewer_resumes_by_itself_when_the_driver_comes_back(self):
        """After the driver's page goes away and comes back, the viewer resumes with no click, within 2 s."""
        relay = self.require_relay()
        tickets = self.owner_tickets(2)
        self.assertEqual({ticket["role"] for ticket in tickets}, {"driver"})
        code = VIEWER_RESUMES_SCRIPT % {"thread_id": self.thread.id, "tickets": json.dumps(tickets),
                                        "relay": json.dumps(relay)}
        self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_follower", timeout=120)


ASK_FOR_PEN_SCRIPT = browser_test_script("ask for the pen", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const ask = await waitFor("Ask for the pen", () => document.querySelector(".o_live_canvas_ask_pen"));
        ask.click();
        await waitFor("the request shown as sent", () => ask.disabled && ask.textContent.includes("Pen asked for"));
""")

# The owner draws, sees the request and hands the pen over. Another viewer (a browser client with a
# viewer ticket) watches throughout: it must neither reconnect nor miss the new pen holder's frames.
HAND_OVER_SCRIPT = browser_test_script("hand over the pen", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const { RealtimeClient } = await import(%(relay)s + "/static/fal_realtime.js");
        const watcher = new RealtimeClient({ url: %(viewer)s.url, ticket: %(viewer)s.ticket });
        const watched = { frames: 0, states: [] };
        watcher.addEventListener("frame", () => { watched.frames += 1; });
        watcher.addEventListener("statechange", (ev) => watched.states.push(ev.detail.state));
        watcher.connect();
        const canvas = await waitFor("the owner's canvas", () => {
            const el = document.querySelector(".o_live_canvas");
            return el && el.dataset.role === "driver" && el;
        });
        const request = await waitFor("the pen request", () => canvas.querySelector(".o_live_canvas_pen_request"));
        if (!request.textContent.includes("Realtime Follower asks for the pen.")) {
            throw new Error("unexpected request: " + request.textContent);
        }
        const composer = document.querySelector(".o-llm-composer-area .o-mail-Composer-input");
        composer.focus();
        composer.value = "a red kite";
        composer.dispatchEvent(new InputEvent("input", { bubbles: true }));
        await waitFor("the other viewer watching", () => watched.frames > 0);
        request.querySelector(".o_live_canvas_give_pen").click();
        const viewer = await waitFor("the owner's canvas as a viewer", () => {
            const el = document.querySelector(".o_live_canvas");
            return el && el.dataset.role === "viewer" && el;
        });
        await waitFor("Comment on the send button", () =>
            document.querySelector(".o-llm-composer-area .o-mail-Composer-send")
                ?.getAttribute("aria-label") === "Comment");
        // The new pen holder draws (their client, with the driver ticket Odoo now gives them).
        const before = watched.frames;
        const pen = new RealtimeClient({ url: %(driver)s.url, ticket: %(driver)s.ticket });
        pen.send({ prompt: "a red kite over the sea", seed: 3, strength: 0.5, num_inference_steps: 2, width: 256,
            height: 256 });
        await waitFor("the new pen holder's frames at the other viewer", () => watched.frames > before);
        await waitFor("the owner watching them", () => viewer.dataset.state === "open"
            && Number(viewer.dataset.frames) > 0);
        // Between pen holders the session has no driver: the client says `waiting`, on the same connection.
        const connected = watched.states.slice(0, 2).join(",") === "connecting,open"
            && watched.states.slice(2).every((state) => state === "waiting" || state === "open");
        if (!connected) {
            throw new Error("the other viewer must stay connected throughout: " + watched.states.join(","));
        }
        pen.close();
        watcher.close();
""")

# The follower, now holding the pen, draws from their own composer and keeps a frame.
NEW_DRIVER_SCRIPT = browser_test_script("new pen holder", OPEN_CHAT + """
        const canvas = await waitFor("the follower's canvas as the driver", () => {
            const el = document.querySelector(".o_live_canvas");
            return el && el.dataset.role === "driver" && el;
        });
        type("a red kite at noon");
        await waitFor("a drawn frame", () => Number(canvas.dataset.frames) > 0);
        pressEnter();
        await waitFor("the kept image in the thread", () =>
            document.querySelector(".o-llm-thread-area .o-mail-Message .o-mail-AttachmentImage img"));
""")


# The owner, watching the follower draw, takes the pen back without asking.
TAKE_BACK_SCRIPT = browser_test_script("take the pen back", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const take = await waitFor("Take the pen back", () => document.querySelector(".o_live_canvas_take_pen"));
        if (document.querySelector(".o_live_canvas_ask_pen")) { throw new Error("the owner need not ask"); }
        take.click();
        await waitFor("the owner's canvas as the driver", () =>
            document.querySelector(".o_live_canvas")?.dataset.role === "driver");
""")


@tagged("post_install", "-at_install")
class TestThePen(FalRealtimeCase):
    def test_the_pen_goes_from_the_owner_to_a_follower(self):
        """A follower asks for the pen, the owner hands it over, the follower draws; another viewer never reconnects."""
        relay = self.require_relay()
        # The owner has the canvas open (else the pen would be free to take, not to ask for).
        self.thread.with_user(self.owner).fal_realtime_room("join", "tab-of-the-owner")
        self.browser_js("/odoo", ASK_FOR_PEN_SCRIPT % {"thread_id": self.thread.id}, ready="odoo.isReady",
                        login="rt_follower", timeout=90)
        self.assertEqual(self.thread.fal_realtime_pen_request_id, self.follower)
        relays = self.env["llm.fal.realtime.relay"]
        viewer = relays.with_user(self.follower)._issue_session(self.thread.id, self.preview_model.id)
        self.assertEqual(viewer["role"], "viewer")
        session = viewer["session"]
        ticket, _expires = relays.with_user(self.follower)._mint_ticket(["local/preview"], "driver", session)
        driver = {"url": viewer["url"], "ticket": ticket}
        code = HAND_OVER_SCRIPT % {"thread_id": self.thread.id, "relay": json.dumps(relay),
                                   "viewer": json.dumps(viewer), "driver": json.dumps(driver)}
        self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_owner", timeout=120)
        self.assertEqual(self.thread.fal_realtime_driver_id, self.follower)
        self.assertFalse(self.thread.fal_realtime_pen_request_id)
        self.browser_js("/odoo", NEW_DRIVER_SCRIPT % {"thread_id": self.thread.id}, ready="odoo.isReady",
                        login="rt_follower", timeout=90)
        kept = self.thread.message_ids.filtered("attachment_ids")
        self.assertEqual(kept.author_id, self.follower.partner_id)
        self.assertIn("a red kite at noon", str(kept.body))
        self.browser_js("/odoo", TAKE_BACK_SCRIPT % {"thread_id": self.thread.id}, ready="odoo.isReady",
                        login="rt_owner", timeout=90)
        self.assertFalse(self.thread.fal_realtime_driver_id, "the owner holds the pen again")

    def test_tickets_and_rights_follow_the_pen(self):
        """Tickets say who drives; only the pen holder (or the owner) hands it over, and only to a participant."""
        relays = self.env["llm.fal.realtime.relay"]

        def role(user):
            return relays.with_user(user)._issue_session(self.thread.id, self.preview_model.id)["role"]

        self.assertEqual((role(self.owner), role(self.follower)), ("driver", "viewer"))
        with self.assertRaisesRegex(UserError, "already hold the pen"):
            self.thread.with_user(self.owner).fal_realtime_request_pen()
        with self.assertRaises(AccessError):
            self.thread.with_user(self.follower).fal_realtime_give_pen(self.follower.id)
        with self.assertRaisesRegex(UserError, "someone who follows"):
            self.thread.with_user(self.owner).fal_realtime_give_pen(self.stranger.id)
        with self.assertRaises(AccessError):
            self.thread.with_user(self.stranger).fal_realtime_request_pen()
        self.thread.with_user(self.follower).fal_realtime_request_pen()
        bus = self.env["bus.bus"].sudo()
        self.env.cr.precommit.run()  # the bus writes its notifications when the transaction commits
        last = bus.search([], order="id desc", limit=1).id or 0
        state = self.thread.with_user(self.owner).fal_realtime_give_pen(self.follower.id, prompt="a kite", seed=3)
        self.assertEqual((state["driver"]["id"], state["request"]), (self.follower.id, False))
        self.env.cr.precommit.run()
        notes = bus.search([("id", ">", last)]).filtered(lambda note: "llm_fal_ai_realtime/pen" in note.message)
        self.assertEqual(len(notes), 2, "the owner and the follower are told")
        payload = json.loads(notes[0].message)["payload"]
        self.assertEqual((payload["driver"]["id"], payload["prompt"], payload["seed"]), (self.follower.id, "a kite", 3))
        self.assertEqual((role(self.owner), role(self.follower)), ("viewer", "driver"))
        canvas = self.thread.with_user(self.follower).fal_realtime_canvas()
        self.assertEqual((canvas["role"], canvas["can_keep"], canvas["can_render_final"]), ("driver", True, False))
        # The owner can always take the pen back.
        self.thread.with_user(self.owner).fal_realtime_give_pen(self.owner.id)
        self.assertEqual((role(self.owner), role(self.follower)), ("driver", "viewer"))
        self.assertFalse(self.thread.fal_realtime_driver_id)


ASSISTANT_SCRIPT = browser_test_script("assistant canvas", OPEN_CHAT + """
        const canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        await waitFor("the assistant's name on the canvas", () =>
            canvas.querySelector(".o_live_canvas_assistant")?.textContent.includes("Live sketch"));
        if (canvas.querySelector(".o_live_canvas_seed").value !== "1234") {
            throw new Error("the assistant's seed must be the canvas's: "
                + canvas.querySelector(".o_live_canvas_seed").value);
        }
        type("a lighthouse");
        await waitFor("a drawn frame", () => Number(canvas.dataset.frames) > 0);
        pressEnter();
        await waitFor("the kept image in the thread", () =>
            document.querySelector(".o-llm-thread-area .o-mail-Message .o-mail-AttachmentImage img"));
""")


def render_on_the_relay(relay_url, ticket, inputs):
    """One frame from the relay for ``inputs`` (local/preview renders deterministically): its JPEG bytes."""
    import msgpack
    import websocket

    from ..models.fal_realtime_relay import websocket_url

    conn = websocket.create_connection(f"{websocket_url(relay_url, 'local/preview')}?fal_jwt_token={ticket}",
                                       timeout=20, suppress_origin=True)
    try:
        conn.send_binary(msgpack.packb(inputs, use_bin_type=True))
        for _attempt in range(10):
            opcode, data = conn.recv_data()
            if opcode == websocket.ABNF.OPCODE_BINARY:
                return msgpack.unpackb(data, raw=False)["images"][0]["content"]
        raise AssertionError("the relay sent no frame")
    finally:
        conn.close(timeout=1)


@tagged("post_install", "-at_install")
class TestAssistantShapesTheCanvas(FalRealtimeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.assistant = cls.env.ref("llm_fal_ai_realtime.llm_assistant_live_sketch")
        cls.assistant.write({
            "default_values": json.dumps({"steps": 3, "width": 320, "height": 256, "strength": 0.7, "seed": 1234,
                                          "seed_policy": "fixed"}),
        })
        cls.thread.sudo().write({"assistant_id": cls.assistant.id})

    def test_the_shipped_live_sketch_assistant(self):
        """"Live sketch" ships as a noupdate record and gets the local/preview model Fetch Models imports."""
        data = self.env["ir.model.data"].search([("module", "=", "llm_fal_ai_realtime"),
                                                 ("name", "=", "llm_assistant_live_sketch")])
        self.assertTrue(data.noupdate)
        self.assertEqual(self.assistant.model_id, self.preview_model, "linked when the models were created")
        self.assertTrue(self.assistant.fal_realtime)
        canvas = self.thread.with_user(self.owner).fal_realtime_canvas()
        self.assertEqual((canvas["prompt_prefix"], canvas["prompt_suffix"]), ("", ", loose pencil sketch, soft light"))
        self.assertEqual(canvas["inputs"], {"steps": 3, "width": 320, "height": 256, "strength": 0.7, "seed": 1234,
                                            "seed_policy": "fixed"})
        self.assertEqual(canvas["assistant"], {"id": self.assistant.id, "name": "Live sketch"})

    def test_saving_a_realtime_assistant_needs_no_prompt_template(self):
        """A realtime assistant saves without a prompt template; a chat assistant still needs one."""
        Assistant = self.env["llm.assistant"]
        bare = Assistant.create({"name": "Bare live", "provider_id": self.provider.id,
                                 "model_id": self.preview_model.id})
        self.assertFalse(bare.prompt_id)
        self.thread.sudo().write({"assistant_id": bare.id})
        canvas = self.thread.with_user(self.owner).fal_realtime_canvas()
        self.assertEqual((canvas["prompt_prefix"], canvas["prompt_suffix"], canvas["inputs"]), ("", "", {}))
        with self.assertRaisesRegex(ValidationError, "needs a prompt template"):
            Assistant.create({"name": "Chatty", "provider_id": self.provider.id, "model_id": self.plain_model.id})

    def test_bad_defaults_are_left_out_and_templates_without_prompt_follow_it(self):
        """Inputs of the wrong type or range keep the canvas's own; a template without {{prompt}} follows the text."""
        prompt = self.env["llm.prompt"].create({"name": "Noir style", "template": "film noir, {{mood}}"})
        self.assistant.write({"prompt_id": prompt.id, "default_values": json.dumps(
            {"mood": "rain", "steps": 0, "width": "big", "strength": 2, "seed": -1, "seed_policy": "sometimes"})})
        canvas = self.thread.with_user(self.owner).fal_realtime_canvas()
        self.assertEqual(canvas["inputs"], {})
        self.assertEqual((canvas["prompt_prefix"], canvas["prompt_suffix"]), ("", ", film noir, rain"))

    def test_the_assistants_template_and_inputs_reach_the_relay(self):
        """Typing "a lighthouse" sends the template's prompt with the assistant's inputs; Keep records the assistant."""
        relay = self.require_relay()
        self.browser_js("/odoo", ASSISTANT_SCRIPT % {"thread_id": self.thread.id}, ready="odoo.isReady",
                        login="rt_owner", timeout=90)
        kept = self.thread.message_ids.filtered("attachment_ids")
        self.assertEqual(len(kept), 1)
        self.assertEqual(kept.body_json, {"prompt": "a lighthouse, loose pencil sketch, soft light", "seed": 1234,
                                          "assistant_id": self.assistant.id})
        self.assertIn("by Live sketch", str(kept.body))
        # The frame the canvas kept is the one the relay renders for exactly these inputs.
        ticket, _expires = self.env["llm.fal.realtime.relay"].with_user(self.owner)._mint_ticket(
            ["local/preview"], "driver", None)
        expected = render_on_the_relay(relay, ticket, {
            "prompt": "a lighthouse, loose pencil sketch, soft light", "seed": 1234, "strength": 0.7,
            "num_inference_steps": 3, "width": 320, "height": 256})
        self.assertEqual(kept.attachment_ids.raw, expected)
