/**
 * The browser client's connection states and the one mapping from a client's status to words: every
 * UI on the client (the widget, the demo page; the Odoo canvas through `client.describe()`) says
 * the same thing for the same state, so none re-interprets errors itself.
 *
 * The browser client (`fal_realtime.js`) uses these and re-exports them.
 *
 * @module fal_status
 */

/** Connection states, in the order a healthy connection goes through them. */
export const STATES = Object.freeze({
    IDLE: "idle", // nothing to send: the next send() connects (a viewer reconnects by itself)
    CONNECTING: "connecting",
    OPEN: "open",
    WAITING: "waiting", // a live session's viewer, connected while the session has no driver
    RECONNECTING: "reconnecting", // `retry` says why, which attempt, and when
    ENDED: "ended", // the live session ended (close 4004 from a relay before session_waiting): no retry
    CLOSED: "closed",
    ERROR: "error",
});

/** How long a reconnect goes unexplained: a blip (a relay restarting) should not alarm anyone. */
export const QUIET_RECONNECT_MS = 3000;

/** What each state is called; `describeStatus` adds the details (why, which attempt, the error). */
export const STATUS_WORDS = Object.freeze({
    [STATES.IDLE]: "Paused — change the input to resume",
    [STATES.CONNECTING]: "Connecting…",
    [STATES.OPEN]: "Live",
    [STATES.WAITING]: "Waiting for the driver…",
    [STATES.RECONNECTING]: "Reconnecting…",
    [STATES.ENDED]: "The live session ended",
    [STATES.CLOSED]: "Closed",
    [STATES.ERROR]: "Stopped",
});
const VIEWER_WORDS = Object.freeze({ [STATES.OPEN]: "Watching live", [STATES.IDLE]: "Watching — reconnecting" });

/** Tones a UI styles the words by. */
export const TONES = Object.freeze({ OK: "ok", WAIT: "wait", WARN: "warn", ERROR: "error", END: "end" });
const STATE_TONES = Object.freeze({
    [STATES.IDLE]: TONES.WAIT, [STATES.CONNECTING]: TONES.WAIT, [STATES.OPEN]: TONES.OK,
    [STATES.WAITING]: TONES.WAIT, [STATES.RECONNECTING]: TONES.WAIT, [STATES.ENDED]: TONES.END,
    [STATES.CLOSED]: TONES.END, [STATES.ERROR]: TONES.ERROR,
});

function sentence(text) {
    return text ? text[0].toUpperCase() + text.slice(1) : text;
}

/**
 * A client's status in words, the one mapping every UI uses (the widget, the demo page; the Odoo
 * canvas can take it from `client.describe()`).
 * @param {{state: string, retry?: object, error?: RealtimeError, inputError?: RealtimeError,
 *          waitingReason?: string}} status  what `client.status` returns
 * @param {{viewer?: boolean, now?: number}} [options] a viewer's words; `now` as `Date.now()`
 * @returns {{text: string, tone: string}} tone one of TONES
 */
export function describeStatus(status, { viewer = false, now = Date.now() } = {}) {
    const { state, retry, error, inputError, waitingReason } = status;
    if (state === STATES.ERROR) {
        const text = error ? `Stopped — ${error.code}: ${error.reason || "no reason given"}` : STATUS_WORDS[state];
        return { text, tone: TONES.ERROR };
    }
    if (state === STATES.RECONNECTING && retry && now - retry.since >= QUIET_RECONNECT_MS) {
        const next = retry.at > now ? `next try in ${Math.ceil((retry.at - now) / 1000)} s` : "trying now";
        return { text: `Reconnecting: ${retry.reason} — attempt ${retry.attempt}, ${next}`, tone: TONES.WARN };
    }
    if (state === STATES.WAITING) {
        return { text: waitingReason ? `${sentence(waitingReason)}…` : STATUS_WORDS[state], tone: TONES.WAIT };
    }
    if (inputError && [STATES.OPEN, STATES.IDLE, STATES.CONNECTING].includes(state)) {
        return { text: `Check the input: ${inputError.reason}`, tone: TONES.WARN };
    }
    const words = (viewer && VIEWER_WORDS[state]) || STATUS_WORDS[state] || state;
    return { text: words, tone: STATE_TONES[state] || TONES.WAIT };
}
