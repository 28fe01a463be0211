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
    const opened = odoo.__WOWL_DEBUG__.root.env.services.action.doAction("llm_thread.action_llm_chat", {
        additionalContext: { active_id: "llm.thread_" + threadId },
    });
    const late = new Promise((resolve, reject) =>
        setTimeout(() => reject(new Error("LLM > Chat did not open")), 30000));
    await Promise.race([opened, late]);
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
    """Three people in one thread: a kept frame and a comment reach the others, and no tab twice."""
    owner, colleague, third = room.open("rt_owner"), room.open("rt_follower"), room.open("rt_third")
    owner_tab2 = room.open_new_tab("rt_owner")
    for page in (owner, colleague, third, owner_tab2):
        open_chat(page, params["thread_id"])
    result = {}
    # The owner draws and keeps a frame: the others see the picture without a reload.
    type_in(owner, "a lighthouse wearing a hat")
    wait_canvas(owner, "Number(c.dataset.frames) > 0")
    sent = time.monotonic()
    owner.press(COMPOSER, "Enter")
    seen = max(wait_message(page, "a lighthouse wearing a hat", with_image=True) for page in (colleague, third))
    result["keep_ms"] = round((seen - sent) * 1000)
    wait_message(owner_tab2, "a lighthouse wearing a hat", with_image=True)
    # The colleague comments: the person drawing (and the third) see it without a reload.
    type_in(colleague, "Nice one, can I try the hat?")
    sent = time.monotonic()
    colleague.press(COMPOSER, "Enter")
    seen = max(wait_message(page, "can I try the hat") for page in (owner, third))
    result["comment_ms"] = round((seen - sent) * 1000)
    time.sleep(1.0)  # anything sent twice would have arrived by now
    result["copies"] = {
        "owner": message_count(owner, "a lighthouse wearing a hat"),
        "owner_tab2": message_count(owner_tab2, "a lighthouse wearing a hat"),
        "colleague": message_count(colleague, "a lighthouse wearing a hat"),
        "colleague_comment": message_count(colleague, "can I try the hat"),
        "owner_comment": message_count(owner, "can I try the hat"),
    }
    # ... and asks for the pen: what the person drawing sees (the readme's screenshot).
    colleague.click(f"{CANVAS} .o_live_canvas_ask_pen")
    owner.wait_for_selector(f"{CANVAS} .o_live_canvas_pen_request", timeout=WAIT_MS)
    owner.evaluate("() => document.querySelectorAll('.o_notification_close').forEach((el) => el.click())")
    time.sleep(0.5)
    room.screenshot(owner, "live_canvas")
    return result


def wait_watchers(page, expected, timeout=WAIT_MS):
    """Wait until the canvas lists exactly ``expected`` (names, the pen holder's with a ``*``), in order."""
    wait_js(page, f"""(expected) => JSON.stringify([...document.querySelectorAll('{CANVAS} .o_live_canvas_watcher')]
        .map((el) => el.dataset.name + (el.dataset.pen ? '*' : ''))) === JSON.stringify(expected)""",
            expected, timeout)
    return time.monotonic()


def pen_and_presence(room, params):
    """Three people: everyone sees who is there; Not now answers the asker; the pen frees when its holder leaves."""
    owner, colleague, third = room.open("rt_owner"), room.open("rt_follower"), room.open("rt_third")
    result = {}
    open_chat(owner, params["thread_id"])
    open_chat(colleague, params["thread_id"])
    opened = time.monotonic()
    open_chat(third, params["thread_id"])
    everyone = ["Realtime Owner*", "Realtime Follower", "Realtime Third"]
    result["watchers_ms"] = round((max(wait_watchers(page, everyone) for page in (owner, colleague, third))
                                   - opened) * 1000)
    room.screenshot(owner, "room_owner")
    # The colleague asks; the owner says "Not now"; the colleague learns it.
    colleague.click(f"{CANVAS} .o_live_canvas_ask_pen")
    owner.wait_for_selector(f"{CANVAS} .o_live_canvas_pen_request .o_live_canvas_decline_pen", timeout=WAIT_MS)
    owner.click(f"{CANVAS} .o_live_canvas_decline_pen")
    colleague.wait_for_selector(".o_notification:has-text('Realtime Owner keeps the pen for now.')", timeout=WAIT_MS)
    room.screenshot(colleague, "not_now")
    wait_canvas(colleague, "!c.querySelector('.o_live_canvas_ask_pen').disabled")
    # The third asks and gets the pen; everyone sees who holds it.
    third.click(f"{CANVAS} .o_live_canvas_ask_pen")
    owner.wait_for_selector(f"{CANVAS} .o_live_canvas_give_pen", timeout=WAIT_MS)
    owner.click(f"{CANVAS} .o_live_canvas_give_pen")
    wait_canvas(third, "c.dataset.role === 'driver'")
    for page in (owner, colleague, third):
        wait_watchers(page, ["Realtime Third*", "Realtime Follower", "Realtime Owner"])
    type_in(third, "a striped hat")
    wait_canvas(third, "Number(c.dataset.frames) > 0")
    # The third goes away (the tab navigates off): the pen is free, the colleague takes it.
    left = time.monotonic()
    third.goto("about:blank")
    colleague.wait_for_selector(f"{CANVAS} .o_live_canvas_take_pen:has-text('Take the pen')", timeout=WAIT_MS)
    result["pen_free_ms"] = round((time.monotonic() - left) * 1000)
    room.screenshot(colleague, "pen_free")
    wait_watchers(owner, ["Realtime Follower", "Realtime Owner"])
    colleague.click(f"{CANVAS} .o_live_canvas_take_pen")
    wait_canvas(colleague, "c.dataset.role === 'driver'")
    type_in(colleague, "a hat with feathers")
    wait_canvas(colleague, "Number(c.dataset.frames) > 0")
    # The owner takes the pen back: the colleague's drawing prompt does not stay as a comment draft.
    owner.wait_for_selector(f"{CANVAS} .o_live_canvas_take_pen:has-text('Take the pen back')", timeout=WAIT_MS)
    owner.click(f"{CANVAS} .o_live_canvas_take_pen")
    wait_canvas(colleague, "c.dataset.role === 'viewer'")
    wait_js(colleague, f"() => document.querySelector('{COMPOSER}').value === ''")
    result["watchers"] = watchers(owner)
    return result


SWITCH_MODEL = """async ([threadId, modelId]) => {
    const env = odoo.__WOWL_DEBUG__.root.env;
    await env.services.orm.write("llm.thread", [threadId], { model_id: modelId });
    await env.services["mail.store"].Thread.get({ model: "llm.thread", id: threadId }).fetchData(["model_id"]);
}"""


def model_switch(room, params):
    """The owner switches the model while the colleague watches: both canvases follow, within 2 s."""
    owner, colleague = room.open("rt_owner"), room.open("rt_follower")
    for page in (owner, colleague):
        open_chat(page, params["thread_id"])
    type_in(owner, "a lighthouse")
    for page in (owner, colleague):
        wait_canvas(page, "c.dataset.state === 'open' && Number(c.dataset.frames) > 0")
    result = {}
    # To a fal model this relay cannot run: both canvases say so, in words that point to the fix.
    switched = time.monotonic()
    owner.evaluate(SWITCH_MODEL, [params["thread_id"], params["fal_model_id"]])
    cannot = "c.querySelector('.o_live_canvas_error_message')?.textContent.includes('does not run on this preview')"
    for page in (owner, colleague):
        wait_canvas(page, cannot)
    result["to_fal_ms"] = round((time.monotonic() - switched) * 1000)
    result["fal_error"] = owner.inner_text(f"{CANVAS} .o_live_canvas_error")
    # Back to the embedded preview: both go on, live, with no error.
    switched = time.monotonic()
    owner.evaluate(SWITCH_MODEL, [params["thread_id"], params["preview_model_id"]])
    for page in (owner, colleague):
        wait_canvas(page, "c.dataset.state === 'open' && Number(c.dataset.frames) > 0"
                          " && !c.querySelector('.o_live_canvas_error')")
    result["back_ms"] = round((time.monotonic() - switched) * 1000)
    return result


def second_tab(room, params):
    """The same person's second tab says the canvas draws in another tab, and "Draw here" moves it."""
    owner = room.open("rt_owner")
    open_chat(owner, params["thread_id"])
    type_in(owner, "a red balloon")
    wait_canvas(owner, "Number(c.dataset.frames) > 0")
    tab2 = room.open_new_tab("rt_owner")
    open_chat(tab2, params["thread_id"])
    tab2.wait_for_selector(f"{CANVAS} .o_live_canvas_draw_here", timeout=WAIT_MS)
    result = {"status": tab2.inner_text(f"{CANVAS} .o_live_canvas_status")}
    room.screenshot(tab2, "second_tab")
    time.sleep(3)  # no silent retrying meanwhile: it stays the same choice
    result["still_offered"] = tab2.locator(f"{CANVAS} .o_live_canvas_draw_here").count()
    tab2.click(f"{CANVAS} .o_live_canvas_draw_here")
    type_in(tab2, "a blue balloon")
    wait_canvas(tab2, "c.dataset.role === 'driver' && Number(c.dataset.frames) > 0"
                      " && !c.querySelector('.o_live_canvas_draw_here')")
    owner.wait_for_selector(f"{CANVAS} .o_live_canvas_draw_here", timeout=WAIT_MS)
    result["first_tab_status"] = owner.inner_text(f"{CANVAS} .o_live_canvas_status")
    return result


def attach(page, name):
    """Attach a small text file in the composer, as its paperclip does."""
    page.set_input_files(".o-llm-composer-area input[type=file]", files=[
        {"name": name, "mimeType": "text/plain", "buffer": name.encode()}])
    page.wait_for_selector(f".o-llm-composer-area .o-mail-AttachmentCard:not(.o-isUploading):has-text('{name}')",
                           timeout=WAIT_MS)


def holder_comments(room, params):
    """The pen holder comments beside Keep; files attached in the composer go with Keep and comments."""
    owner, colleague = room.open("rt_owner"), room.open("rt_follower")
    for page in (owner, colleague):
        open_chat(page, params["thread_id"])
    type_in(owner, "a castle")
    wait_canvas(owner, "Number(c.dataset.frames) > 0")
    result = {"send_label": owner.get_attribute(SEND, "aria-label"), "send_title": owner.get_attribute(SEND, "title")}
    # Shift+Enter is a new line, as everywhere in Odoo, and keeps nothing.
    owner.focus(COMPOSER)
    owner.keyboard.press("End")
    owner.keyboard.press("Shift+Enter")
    result["shift_enter"] = owner.input_value(COMPOSER)
    type_in(owner, "a castle")
    # Comment: the prompt is set aside (the picture stays), Enter posts the comment, the prompt returns.
    owner.click(".o-llm-composer-area .o_live_canvas_comment_mode")
    wait_js(owner, f"() => document.querySelector('{COMPOSER}').value === ''")
    result["comment_label"] = owner.get_attribute(SEND, "aria-label")
    type_in(owner, "What do you think of the towers?")
    sent = time.monotonic()
    owner.press(COMPOSER, "Enter")
    result["comment_ms"] = round((wait_message(colleague, "What do you think of the towers?") - sent) * 1000)
    wait_js(owner, f"() => document.querySelector('{COMPOSER}').value === 'a castle'")
    # A file attached in the composer goes with the kept frame; the text stays.
    attach(owner, "castle-notes.txt")
    owner.press(COMPOSER, "Enter")
    wait_message(colleague, "castle-notes.txt", with_image=True)
    wait_js(owner, "() => !document.querySelector('.o-llm-composer-area .o-mail-AttachmentCard')")
    result["prompt_after_keep"] = owner.input_value(COMPOSER)
    # And with a comment of the pen holder.
    owner.click(".o-llm-composer-area .o_live_canvas_comment_mode")
    attach(owner, "hat.txt")
    type_in(owner, "see the attached idea")
    owner.press(COMPOSER, "Enter")
    wait_message(colleague, "hat.txt")
    # A colleague, who may read the thread but not write it, attaches a file to a comment too.
    attach(colleague, "feathers.txt")
    type_in(colleague, "feathers would suit it")
    colleague.press(COMPOSER, "Enter")
    wait_message(owner, "feathers.txt")
    room.screenshot(owner, "holder_comments")
    return result


def phone(room, params):
    """In a 390 px wide window, LLM > Chat opens the realtime thread with its canvas strip and composer; the
    person opens the canvas and takes the pen (the test gave it to a colleague who is not here)."""
    page = room.open("rt_owner", viewport={"width": 390, "height": 844}, has_touch=True)
    open_chat(page, params["thread_id"])
    time.sleep(1)  # a form view opening instead would have replaced the chat by now
    result = page.evaluate(f"""() => ({{
        width: window.innerWidth,
        form: Boolean(document.querySelector('.o_form_view')),
        canvasHeight: document.querySelector('{CANVAS}').getBoundingClientRect().height,
        composerVisible: document.querySelector('{COMPOSER}').getBoundingClientRect().height > 0,
    }})""")
    # Opened out of its strip, the canvas stays open when it remounts as the pen comes to this person.
    page.click(f"{CANVAS} .o_live_canvas_toggle")
    page.click(f"{CANVAS} .o_live_canvas_take_pen")
    wait_canvas(page, "c.dataset.role === 'driver'")
    result["expanded_after_pen"] = page.evaluate(f"() => document.querySelector('{CANVAS}')"
                                                 ".classList.contains('o_live_canvas_expanded')")
    type_in(page, "a lighthouse on a phone")
    wait_canvas(page, "Number(c.dataset.frames) > 0")
    page.press(COMPOSER, "Enter")
    wait_message(page, "a lighthouse on a phone", with_image=True)
    room.screenshot(page, "phone")
    return result


def assistant_first_frame(room, params):
    """Picking the assistant applies its template and inputs to the very next frame and Keep."""
    owner = room.open("rt_owner")
    open_chat(owner, params["thread_id"])
    owner.evaluate("async (id) => odoo.__WOWL_DEBUG__.root.env.services['llm.store'].selectAssistant(id)",
                   params["assistant_id"])
    type_in(owner, "a lighthouse")
    wait_canvas(owner, "Number(c.dataset.frames) > 0")
    owner.press(COMPOSER, "Enter")
    wait_message(owner, "a lighthouse", with_image=True)
    return {"seed": owner.input_value(f"{CANVAS} .o_live_canvas_seed")}


def test_connection_first_click(room, params):
    """Type the secret, then press Test connection at a person's pace: the first click is heard."""
    page = room.open("admin")
    page.goto(f"{room.config['base_url']}/odoo/action-base_setup.action_general_configuration")
    secret = page.locator("div[name=fal_realtime_shared_secret] input")
    secret.wait_for(timeout=WAIT_MS)
    secret.fill(params["secret"])  # the field still has the focus: it commits on blur, when the click starts
    button = page.locator(".o_fal_realtime_test")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    time.sleep(0.25)  # a person's press, during which the form reacts to the blur
    page.mouse.up()
    pressed = time.monotonic()
    page.wait_for_selector(".o_fal_realtime_verdict", timeout=10000)
    return {"verdict_ms": round((time.monotonic() - pressed) * 1000),
            "ok": page.get_attribute(".o_fal_realtime_verdict", "data-ok")}


OPEN_CHAT_LIST = """async () => {
    await odoo.__WOWL_DEBUG__.root.env.services.action.doAction("llm_thread.action_llm_chat");
}"""
LISTED = """(name) => [...document.querySelectorAll('.text-truncate')].some((el) => el.textContent.trim() === name)"""


def invite(room, params):
    """The owner invites a colleague from the header (`phone`: from the chat's bar in a 390 px window):
    the colleague's open chat lists the canvas, and they watch; removed, the canvas leaves their screen
    and the owner's list of who is here."""
    phone = params.get("phone", False)
    owner = room.open("rt_owner", **({"viewport": {"width": 390, "height": 844}, "has_touch": True} if phone else {}))
    colleague = room.open(params["login"])
    colleague.evaluate(OPEN_CHAT_LIST)
    colleague.wait_for_selector("text=New live canvas", timeout=WAIT_MS)
    open_chat(owner, params["thread_id"])
    if phone:
        owner.click(f"{CANVAS} .o_live_canvas_toggle")  # out of its strip, where the watchers show
    wait_canvas(owner, "c.querySelector('.o_live_canvas_watcher')")

    def choose(change):
        owner.click(".o_fal_realtime_invite")
        owner.wait_for_selector(".modal .o_field_many2many_tags input", timeout=WAIT_MS)
        change()
        started = time.monotonic()
        owner.click(".modal footer button[name=action_save]")
        owner.wait_for_selector(".modal", state="detached", timeout=WAIT_MS)
        return started

    def add():
        if phone:  # Odoo's small screens pick from a search dialog, not a dropdown under the field
            owner.click(".modal .o_field_many2many_tags input")
            records = owner.locator(".modal .o_kanban_record, .modal .o_data_row")
            records.filter(has_text=params["name"]).first.wait_for(timeout=WAIT_MS)
            offered.extend(records.all_inner_texts())
            records.filter(has_text=params["name"]).first.click()
        else:
            owner.fill(".modal .o_field_many2many_tags input", params["name"])
            owner.locator(".o-autocomplete--dropdown-item").filter(has_text=params["name"]).first.click()
        owner.wait_for_selector(f".modal .o_tag:has-text('{params['name']}')", timeout=WAIT_MS)

    offered = []  # the people the phone's search dialog offers
    started = choose(add)
    wait_js(colleague, LISTED, params["thread_name"])
    invited_ms = (time.monotonic() - started) * 1000
    colleague.locator(".text-truncate", has_text=params["thread_name"]).first.click()
    colleague.wait_for_selector(CANVAS, timeout=WAIT_MS)
    wait_watchers(owner, ["Realtime Owner*", params["name"]])
    room.screenshot(owner, "invited_phone" if phone else "invited")

    started = choose(lambda: owner.click(f".modal .o_tag:has-text('{params['name']}') .o_delete"))
    wait_js(colleague, f"(name) => !document.querySelector('{CANVAS}') && !({LISTED})(name)", params["thread_name"])
    removed_ms = (time.monotonic() - started) * 1000
    wait_watchers(owner, ["Realtime Owner*"])
    return {"invited_ms": round(invited_ms), "removed_ms": round(removed_ms), "watchers": watchers(owner),
            "offered": offered}


SCENARIOS = {scenario.__name__: scenario for scenario in (test_connection_first_click, 
    live_messages, pen_and_presence, model_switch, second_tab, holder_comments, phone, assistant_first_frame,
    invite)}


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
