"""Browser scenarios of a realtime thread's room, run by tests/room.py in the relay's Python.

Reads ``{base_url, request_key, logins, scenario, params}`` on stdin, opens one
Chromium context per login (its own cookies, its own Odoo bus worker), runs the scenario and prints
its result as the last line of JSON. A failed check raises: the exit code and the traceback say why.
Every wait is bounded.
"""

import json
import sys
import time
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
WAIT_MS = 30000

OPEN_CHAT = """async (threadId) => {
    await odoo.__WOWL_DEBUG__.root.env.services.action.doAction("llm_thread.action_llm_chat", {
        additionalContext: { active_id: "llm.thread_" + threadId },
    });
}"""

TYPE = """([selector, text]) => {
    const input = document.querySelector(selector);
    input.focus();
    input.value = text;
    input.dispatchEvent(new InputEvent("input", { bubbles: true }));
}"""

COMPOSER = ".o-llm-composer-area .o-mail-Composer-input"
SEND = ".o-llm-composer-area .o-mail-Composer-send"
MESSAGES = ".o-llm-thread-area .o-mail-Message"
CANVAS = ".o_live_canvas"


class Room:
    """The people of the scenario, each a page in their own browser context."""

    def __init__(self, playwright, config):
        self.config = config
        self.browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        self.pages = {}
        self.logs = []

    def open(self, login, viewport=None, **context_options):
        host = urlsplit(self.config["base_url"]).hostname
        context = self.browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, **context_options)
        # Odoo's test server serves only requests that carry the running test's key.
        context.add_cookies([
            {"name": "test_request_key", "value": self.config["request_key"], "domain": host, "path": "/"},
        ])
        page = context.new_page()
        page.on("console", lambda message: self.logs.append(f"{login} {message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.logs.append(f"{login} pageerror: {error}"))
        page.goto(f"{self.config['base_url']}/web/login", wait_until="domcontentloaded")
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", login)
        page.click("form.oe_login_form button[type=submit]")
        page.wait_for_function("window.odoo && odoo.isReady", timeout=WAIT_MS)
        self.pages[login] = page
        return page

    def open_new_tab(self, login):
        """A second tab of the same person: same browser context, same session."""
        page = self.pages[login].context.new_page()
        page.on("console", lambda message: self.logs.append(f"{login}#2 {message.type}: {message.text}"))
        page.goto(f"{self.config['base_url']}/odoo", wait_until="domcontentloaded")
        page.wait_for_function("window.odoo && odoo.isReady", timeout=WAIT_MS)
        return page

    def screenshot(self, page, name):
        if self.config.get("screenshots"):
            page.screenshot(path=f"{self.config['screenshots']}/{name}.png")

    def close(self):
        self.browser.close()


def open_chat(page, thread_id):
    page.evaluate(OPEN_CHAT, thread_id)
    page.wait_for_selector(CANVAS, timeout=WAIT_MS)
    page.wait_for_selector(COMPOSER, timeout=WAIT_MS)


def type_in(page, text):
    page.evaluate(TYPE, [COMPOSER, text])


def wait_js(page, expression, arg=None, timeout=WAIT_MS):
    page.wait_for_function(expression, arg=arg, timeout=timeout, polling=50)


def message_count(page, text):
    return page.evaluate("([sel, text]) => [...document.querySelectorAll(sel)]"
                         ".filter((el) => el.textContent.includes(text)).length", [MESSAGES, text])


def wait_message(page, text, with_image=False, timeout=WAIT_MS):
    """Wait until the chat shows a message containing ``text``; return when it appeared (monotonic s)."""
    wait_js(page, """([sel, text, image]) => [...document.querySelectorAll(sel)].some((el) =>
        el.textContent.includes(text) && (!image || el.querySelector('.o-mail-AttachmentImage img')))""",
            [MESSAGES, text, with_image], timeout)
    return time.monotonic()


def wait_canvas(page, condition, timeout=WAIT_MS):
    """Wait until ``condition(canvas)`` (a JS arrow body over the canvas element) holds."""
    wait_js(page, f"() => {{ const c = document.querySelector('{CANVAS}'); return Boolean(c && ({condition})); }}",
            timeout=timeout)


def watchers(page):
    return page.evaluate(f"() => [...document.querySelectorAll('{CANVAS} .o_live_canvas_watcher')]"
                         ".map((el) => el.dataset.name + (el.dataset.pen ? '*' : ''))")


# ---------------------------------------------------------------------------------------------- scenarios


def live_messages(room, params):
    """Owner and colleague in one thread: a comment and a kept frame reach the other side, and no tab twice."""
    owner, colleague = room.open("rt_owner"), room.open("rt_follower")
    owner_tab2 = room.open_new_tab("rt_owner")
    for page in (owner, colleague, owner_tab2):
        open_chat(page, params["thread_id"])
    result = {}
    # The colleague comments: the person drawing sees it without a reload.
    type_in(colleague, "Nice one, can I try the hat?")
    sent = time.monotonic()
    colleague.press(COMPOSER, "Enter")
    result["comment_ms"] = round((wait_message(owner, "can I try the hat") - sent) * 1000)
    # The owner draws and keeps a frame: the colleague sees the picture without a reload.
    type_in(owner, "a lighthouse wearing a hat")
    wait_canvas(owner, "Number(c.dataset.frames) > 0")
    sent = time.monotonic()
    owner.press(COMPOSER, "Enter")
    result["keep_ms"] = round((wait_message(colleague, "a lighthouse wearing a hat", with_image=True) - sent) * 1000)
    wait_message(owner_tab2, "a lighthouse wearing a hat", with_image=True)
    time.sleep(1.0)  # anything sent twice would have arrived by now
    result["copies"] = {
        "owner": message_count(owner, "a lighthouse wearing a hat"),
        "owner_tab2": message_count(owner_tab2, "a lighthouse wearing a hat"),
        "colleague": message_count(colleague, "a lighthouse wearing a hat"),
        "colleague_comment": message_count(colleague, "can I try the hat"),
    }
    room.screenshot(colleague, "colleague")
    return result


SCENARIOS = {scenario.__name__: scenario for scenario in (live_messages,)}


def main():
    config = json.load(sys.stdin)
    with sync_playwright() as playwright:
        room = Room(playwright, config)
        try:
            result = SCENARIOS[config["scenario"]](room, config["params"])
        except Exception:
            print("\n".join(room.logs[-60:]))
            raise
        finally:
            room.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
