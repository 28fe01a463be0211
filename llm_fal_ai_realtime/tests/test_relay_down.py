import threading
from contextlib import contextmanager
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tests.common import ChromeBrowser

from .common import FalRealtimeCase, browser_test_script
from .relay_process import RelayProcess, free_port

RELAY_MAY_START = "relay-may-start"

RELAY_MAY_STOP = "relay-may-stop"

# Runs in the chat: the relay is down when the page loads and the canvas opens. The page says when
# it has seen the canvas retrying (a same-origin request the test watches for); the test then starts
# the relay, and the canvas must go live and draw the prompt typed meanwhile, with no click. After the
# client's quiet period the canvas says why it reconnects, which attempt and when it tries next (the
# client's `retry`); when the relay goes away again, the last frame stays while it says so.
RELAY_DOWN_SCRIPT = browser_test_script("relay down at page load", """
        const env = odoo.__WOWL_DEBUG__.root.env;
        const sockets = [];
        const PageWebSocket = window.WebSocket;
        window.WebSocket = class extends PageWebSocket {
            constructor(url, ...rest) {
                super(url, ...rest);
                sockets.push(String(url));
            }
        };
        await env.services.action.doAction("llm_thread.action_llm_chat", {
            additionalContext: { active_id: "llm.thread_%(thread_id)s" },
        });
        const canvas = await waitFor("the live canvas", () => document.querySelector(".o_live_canvas"));
        const states = [canvas.dataset.state];
        new MutationObserver(() => states.push(canvas.dataset.state))
            .observe(canvas, { attributes: true, attributeFilter: ["data-state"] });
        const input = document.querySelector(".o-llm-composer-area .o-mail-Composer-input");
        input.focus();
        input.value = "a lighthouse in the fog";
        input.dispatchEvent(new InputEvent("input", { bubbles: true }));
        await waitFor("the canvas retrying while the relay is down", () => canvas.dataset.state === "reconnecting");
        const detail = () => canvas.querySelector(".o_live_canvas_detail")?.textContent || "";
        const unreachable = /^Reconnecting: can't reach the relay — attempt (\\d+), next try in (\\d+) s$/;
        const first = await waitFor("the canvas saying why it reconnects, which attempt and when (after the quiet "
            + "period)", () => detail().match(unreachable), 30000);
        if (Number(first[1]) < 2 || Number(canvas.dataset.frames) !== 0) {
            throw new Error("past the quiet period, several attempts and no frame yet: " + first[0]);
        }
        await fetch("/web/static/img/favicon.ico?%(signal)s=1");
        await waitFor("the canvas live with a frame, with no click", () =>
            canvas.dataset.state === "open" && Number(canvas.dataset.frames) > 0, 120000);
        if (detail()) {
            throw new Error("live, the canvas still explains a reconnect: " + detail());
        }
        const picture = canvas.querySelector("canvas");
        await sleep(500); // the frames for the typed prompt settle
        const frames = canvas.dataset.frames, lastFrame = picture.toDataURL();
        await fetch("/web/static/img/favicon.ico?%(stop)s=1");
        await waitFor("the canvas reconnecting when the relay goes away",
                      () => canvas.dataset.state === "reconnecting");
        const seen = new Set();
        const again = await waitFor("the canvas saying it can't reach the relay, with attempt and next try",
            () => seen.add(`${canvas.dataset.state}: ${detail()}`) && detail().match(unreachable), 30000)
            .catch((error) => { throw new Error(error.message + "; seen: " + [...seen].join(" | ")); });
        if (canvas.dataset.frames !== frames || picture.toDataURL() !== lastFrame) {
            throw new Error("the last frame must stay while the relay is away: " + again[0]);
        }
        if (states.includes("error")) {
            throw new Error("the canvas must never stop while the relay is down: " + states.join(" > "));
        }
        if (!sockets.some((url) => url.startsWith("%(ws_url)s/local/preview/realtime?"))) {
            throw new Error("the canvas's WebSocket must go to the relay: " + sockets.join(", "));
        }
""")


@contextmanager
def watched_requests(on_request=None):
    """Every HTTP(S) request the test browser makes (Odoo's ChromeBrowser pauses each one; WebSockets aside).

    :param on_request: called with each URL before the request goes on
    """
    seen = []
    original = ChromeBrowser._handle_request_paused

    def recording(browser, **params):
        seen.append(params["request"]["url"])
        if on_request:
            on_request(params["request"]["url"])
        return original(browser, **params)

    with patch.object(ChromeBrowser, "_handle_request_paused", recording):
        yield seen


@tagged("post_install", "-at_install")
class TestCanvasOutlivesTheRelay(FalRealtimeCase):
    def test_canvas_opened_while_the_relay_is_down_goes_live_when_it_answers(self):
        """Chat loaded with the relay down: the canvas retries, saying so (can't reach the relay, attempt N,
        next try in M s) after the quiet period, then draws once the relay is started; when the relay goes
        away again the last frame stays while it says so. The page never requests anything from the relay's
        origin but the WebSocket (the client is in Odoo's bundle)."""
        port = free_port()
        relay_url = f"http://127.0.0.1:{port}"
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.relay_url", relay_url)
        base = self.base_url()
        relay = RelayProcess(self, port, [base, base.replace("127.0.0.1", "localhost")])
        may_start, may_stop, done, failures = threading.Event(), threading.Event(), threading.Event(), []

        def start_when_asked():
            while not done.is_set():
                if may_start.wait(0.2):
                    try:
                        relay.start()
                    except AssertionError as exc:
                        failures.append(str(exc))
                        return
                    break
            while not done.is_set():
                if may_stop.wait(0.2):
                    relay.stop()
                    return

        starter = threading.Thread(target=start_when_asked, name="relay starter")
        starter.start()
        try:
            def on_request(url):
                if RELAY_MAY_START in url:
                    may_start.set()
                if RELAY_MAY_STOP in url:
                    may_stop.set()

            with watched_requests(on_request) as seen:
                code = RELAY_DOWN_SCRIPT % {"thread_id": self.thread.id, "signal": RELAY_MAY_START,
                                            "stop": RELAY_MAY_STOP, "ws_url": f"ws://127.0.0.1:{port}"}
                self.browser_js("/odoo", code, ready="odoo.isReady", login="rt_owner", timeout=240)
        finally:
            done.set()
            starter.join(timeout=120)
            relay.stop()
        self.assertFalse(failures, failures)
        self.assertTrue(may_start.is_set(), "the page never saw the canvas retrying")
        self.assertTrue(may_stop.is_set(), "the page never went live to see the relay go away")
        self.assertTrue(seen, "no request of the page was watched")
        from_relay = [url for url in seen if url.startswith(relay_url) or url.startswith(f"http://localhost:{port}")]
        self.assertEqual(from_relay, [], "the chat page must load nothing from the relay's origin")
