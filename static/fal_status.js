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

/** Why a reconnect happens (`retry.cause`), and its words; a relay's refusal carries its own reason. */
export const RETRY_CAUSES = Object.freeze({
    UNREACHABLE: "unreachable", // no socket opened: the relay is down or unreachable
    LOST: "lost", // an open connection dropped
    RESTARTING: "restarting", // the relay said it restarts (close 1012)
    REFUSED: "refused", // the relay refused with an x-fal-error: `retry.reason` is `CODE: reason`
});
export const RETRY_WORDS = Object.freeze({
    [RETRY_CAUSES.UNREACHABLE]: "can't reach the relay",
    [RETRY_CAUSES.LOST]: "lost the connection to the relay",
    [RETRY_CAUSES.RESTARTING]: "the relay is restarting",
});

/**
 * Which sentence applies to a client's status, without the words: `key` is a state name (see
 * STATUS_WORDS) or one of `viewer_open`, `viewer_idle`, `error_detail` {code, reason},
 * `retry_next` {cause, reason, attempt, seconds}, `retry_now` {cause, reason, attempt},
 * `waiting_reason` {reason}, `input_error` {reason}. A UI with its own translated words (the Odoo
 * canvas) keys them by this; `describeStatus` is the English.
 * @param {object} status  what `client.status` returns
 * @param {{viewer?: boolean, now?: number}} [options] a viewer's words; `now` as `Date.now()`
 * @returns {{key: string, params: object, tone: string}} tone one of TONES
 */
export function statusKey(status, { viewer = false, now = Date.now() } = {}) {
    const { state, retry, error, inputError, waitingReason } = status;
    if (state === STATES.ERROR) {
        return error
            ? { key: "error_detail", params: { code: error.code, reason: error.reason || "" }, tone: TONES.ERROR }
            : { key: state, params: {}, tone: TONES.ERROR };
    }
    if (state === STATES.RECONNECTING && retry && now - retry.since >= QUIET_RECONNECT_MS) {
        const params = { cause: retry.cause, reason: retry.reason, attempt: retry.attempt };
        if (retry.at > now) {
            return { key: "retry_next", params: { ...params, seconds: Math.ceil((retry.at - now) / 1000) }, tone: TONES.WARN };
        }
        return { key: "retry_now", params, tone: TONES.WARN };
    }
    if (state === STATES.WAITING) {
        return waitingReason
            ? { key: "waiting_reason", params: { reason: waitingReason }, tone: TONES.WAIT }
            : { key: state, params: {}, tone: TONES.WAIT };
    }
    if (inputError && [STATES.OPEN, STATES.IDLE, STATES.CONNECTING].includes(state)) {
        return { key: "input_error", params: { reason: inputError.reason }, tone: TONES.WARN };
    }
    const key = viewer && VIEWER_WORDS[state] ? `viewer_${state}` : state;
    return { key, params: {}, tone: STATE_TONES[state] || TONES.WAIT };
}

/**
 * A client's status in words, the one mapping every UI uses (the widget, the demo page); the Odoo
 * canvas translates the same `key` and `params` (returned alongside) with its own table.
 * @param {{state: string, retry?: object, error?: RealtimeError, inputError?: RealtimeError,
 *          waitingReason?: string}} status  what `client.status` returns
 * @param {{viewer?: boolean, now?: number}} [options] a viewer's words; `now` as `Date.now()`
 * @returns {{text: string, tone: string, key: string, params: object}} tone one of TONES
 */
export function describeStatus(status, options = {}) {
    const { key, params, tone } = statusKey(status, options);
    const words = {
        error_detail: () => `Stopped — ${params.code}: ${params.reason || "no reason given"}`,
        retry_next: () => `Reconnecting: ${params.reason} — attempt ${params.attempt}, next try in ${params.seconds} s`,
        retry_now: () => `Reconnecting: ${params.reason} — attempt ${params.attempt}, trying now`,
        waiting_reason: () => `${sentence(params.reason)}…`,
        input_error: () => `Check the input: ${params.reason}`,
        viewer_open: () => VIEWER_WORDS[STATES.OPEN],
        viewer_idle: () => VIEWER_WORDS[STATES.IDLE],
    }[key];
    return { text: words ? words() : STATUS_WORDS[key] || key, tone, key, params };
}
