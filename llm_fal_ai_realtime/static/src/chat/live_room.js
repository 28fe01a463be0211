/** @odoo-module **/
/**
 * This tab's place in a realtime thread's room: it joins when the canvas opens, beats while it stays
 * open (saying how long the person has been idle here, so a pen holder who walked away frees the pen),
 * and leaves when the canvas closes or the tab goes away. The server keeps the room and tells
 * everyone in it on the bus (models/llm_thread_room.py).
 */
import { browser } from "@web/core/browser/browser";
import { user } from "@web/core/user";

/** The server drops a tab that missed two beats (fal_realtime_watcher.py's HEARTBEAT_SECONDS). */
export const HEARTBEAT_MS = 15000;
const ROOM_ROUTE = "/llm_fal_ai_realtime/room";
const ACTIVITY_EVENTS = ["keydown", "pointerdown", "input"];

/** This tab's own id, made once per page load: the server tells two tabs of one person apart by it. */
export const TAB_ID = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0"))
    .join("");

export class LiveRoom {
    /**
     * @param {number} threadId
     * @param {(route: string, params: object) => Promise<object>} call the addon's JSON route caller
     * @param {(state: object) => void} onState the room's state, as the server answers each beat
     */
    constructor(threadId, call, onState) {
        this.threadId = threadId;
        this.call = call;
        this.onState = onState;
        this.lastActivity = Date.now();
        this.timer = null;
        this.onActivity = () => (this.lastActivity = Date.now());
        this.onPageHide = () => this.leave({ keepalive: true });
    }

    /** Join the room and beat until `leave`. */
    start() {
        for (const name of ACTIVITY_EVENTS) {
            browser.addEventListener(name, this.onActivity, true);
        }
        browser.addEventListener("pagehide", this.onPageHide);
        this.send("join");
        this.timer = browser.setInterval(() => this.send("beat"), HEARTBEAT_MS);
    }

    /** "Draw here": this tab takes the drawing over; the user's other tabs are told on the bus. */
    draw() {
        return this.send("draw");
    }

    async send(action) {
        const idle = Math.max(0, Math.floor((Date.now() - this.lastActivity) / 1000));
        try {
            const state = await this.call(ROOM_ROUTE, {
                thread_id: this.threadId, action, tab: TAB_ID, idle_seconds: idle,
            });
            if (this.timer !== null || action === "join") {
                this.onState(state);
            }
            return state;
        } catch {
            return null; // the next beat tries again; the room is a courtesy, never an error to show
        }
    }

    /**
     * Leave the room. On the way out of the page a plain keepalive request is used: it outlives the page.
     * @param {{keepalive?: boolean}} [options]
     */
    leave({ keepalive = false } = {}) {
        browser.clearInterval(this.timer);
        this.timer = null;
        for (const name of ACTIVITY_EVENTS) {
            browser.removeEventListener(name, this.onActivity, true);
        }
        browser.removeEventListener("pagehide", this.onPageHide);
        const params = { thread_id: this.threadId, action: "leave", tab: TAB_ID, context: user.context };
        if (keepalive) {
            browser.fetch(ROOM_ROUTE, {
                method: "POST",
                keepalive: true,
                headers: { "Content-Type": "application/json" },
                body: JSON.stringify({ jsonrpc: "2.0", method: "call", id: 0, params }),
            }).catch(() => {});
            return;
        }
        this.call(ROOM_ROUTE, params).catch(() => {});
    }
}
