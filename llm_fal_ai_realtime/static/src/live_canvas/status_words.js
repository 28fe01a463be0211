/** @odoo-module **/
/**
 * What the live canvas says about its connection, in Odoo's translations. The client decides which
 * sentence applies (`client.state`, and `client.describe()`'s key and params, static/fal_status.js);
 * this module only holds the words, keyed by the client's own names, and the errors in words a user
 * can act on. Odoo extracts only literal `_t("...")` calls, hence tables rather than the client's
 * English.
 */
import { _t } from "@web/core/l10n/translation";

/**
 * One table keyed by `client.describe()`'s key (a state name, `viewer_open`, `retry_next`, ...) plus the
 * canvas's own `elsewhere` (another tab of this user draws): `label` is the badge, `detail(params)` the
 * line under the header. A key without a label (`retry_next`, `error_detail`, `waiting_reason`, ...)
 * shows its state's.
 */
const STATUS_WORDS = Object.freeze({
    idle: { label: _t("Paused — type to resume") },
    connecting: { label: _t("Connecting…") },
    open: { label: _t("Live") },
    waiting: { label: _t("Waiting") },
    reconnecting: { label: _t("Reconnecting…") },
    // The driver left (an older relay ends its viewers): in a thread that is a pause, not an end.
    ended: { label: _t("Waiting") },
    closed: { label: _t("Closed") },
    error: { label: _t("Stopped") },
    viewer_open: { label: _t("Watching live") },
    viewer_idle: { label: _t("Watching — reconnecting") },
    elsewhere: { label: _t("Drawing in another tab") },
    retry_next: {
        detail: (p) => _t("Reconnecting: %(why)s — attempt %(attempt)s, next try in %(seconds)s s", p),
    },
    retry_now: { detail: (p) => _t("Reconnecting: %(why)s — attempt %(attempt)s, trying now", p) },
    input_error: { detail: (p) => _t("Check the input: %s", p.reason) },
});

/** Why the client reconnects (`params.cause`); a relay's refusal (`refused`) says its own reason. */
const RETRY_CAUSE_WORDS = Object.freeze({
    unreachable: _t("can't reach the relay"),
    lost: _t("lost the connection to the relay"),
    restarting: _t("the relay is restarting"),
});

/** The badge's colour per client state. */
const STATE_BADGES = Object.freeze({
    idle: "text-bg-secondary",
    connecting: "text-bg-info",
    open: "text-bg-success",
    waiting: "text-bg-light",
    reconnecting: "text-bg-warning",
    ended: "text-bg-light",
    closed: "text-bg-secondary",
    error: "text-bg-danger",
});

/**
 * The badge and the line beneath for a status as the client describes it.
 * @param {{key: string, params: object}} described `client.describe()`'s key and params (or the canvas's own key)
 * @param {string} state the client's state, whose label stands in for keys without one
 * @returns {{label: string, detail: string}}
 */
export function statusWords({ key, params = {} }, state) {
    const words = STATUS_WORDS[key] || {};
    const label = words.label || STATUS_WORDS[state]?.label || key;
    if (!words.detail) {
        return { label: String(label), detail: "" };
    }
    const cause = params.cause === "refused" ? null : RETRY_CAUSE_WORDS[params.cause];
    const why = String(cause || params.reason); // a refusal in the relay's words
    return { label: String(label), detail: String(words.detail({ ...params, why })) };
}

/** @param {string} state the client's state @returns {string} the badge's Bootstrap class */
export function stateBadge(state) {
    return STATE_BADGES[state] || STATE_BADGES.connecting;
}

/**
 * The browser client's `NO_TICKET` (static/fal_realtime.js): `getTicket` failed, so Odoo, not the
 * relay, refused the pass. The canvas does not import the client (it arrives through `createClient`);
 * the LiveCanvas browser test checks that the two agree.
 */
export const NO_TICKET = "NO_TICKET";

/** Error codes in words a user can act on; the reason (the relay's, or Odoo's) is shown beneath. */
export const ERROR_MESSAGES = Object.freeze({
    // The relay says which of the two it is in its reason, shown beneath: a signature that does not
    // match, or a ticket "not valid yet" (Odoo's clock ahead of the relay's).
    UNAUTHORIZED: _t("The preview server did not accept your pass. Reload the page; if it keeps happening, an administrator should check that the relay's shared secret is Odoo's and that the clocks of Odoo and the relay agree."),
    TICKET_EXPIRED: _t("Your preview pass expired. Reconnecting with a fresh one…"),
    APP_NOT_ALLOWED: _t("This model does not run on this preview server. fal.ai's models need the relay to run with a FAL_KEY (without one it serves only the embedded local/preview); pick another model for this conversation, or ask an administrator to set up the relay."),
    ORIGIN_NOT_ALLOWED: _t("The preview server does not accept connections from this Odoo address. Ask an administrator to add it."),
    FRAME_TOO_LARGE: _t("That input is too large for the live preview. Try a shorter prompt or a smaller image."),
    BAD_FRAME: _t("The preview server could not read the input."),
    BAD_REQUEST: _t("The preview server could not understand the request."),
    RATE_LIMITED: _t("You are going faster than the preview allows. It will catch up in a moment."),
    CLIENT_TOO_SLOW: _t("This page stopped taking frames for a while (a busy or hidden tab). Reconnecting…"),
    TOO_MANY_CONNECTIONS: _t("Too many live previews are open right now. Close another one or try again shortly."),
    UPSTREAM_UNAVAILABLE: _t("The image model cannot be reached right now. Trying again…"),
    UPSTREAM_ERROR: _t("The image model reported an error."),
    VIEWER_READ_ONLY: _t("You are watching this preview; only the person holding the pen can change it."),
    SESSION_BUSY: _t("This conversation's live preview is already open in another tab or window. It will take over when that one closes."),
    SESSION_EXPIRED: _t("This live preview reached its time limit. Type to start a new one."),
    TIMEOUT: _t("The preview server took too long to answer."),
    INTERNAL_ERROR: _t("The preview server had a problem."),
    [NO_TICKET]: _t("Odoo refused to give you a pass for this live preview."),
});

/** @param {string} code an error code @returns {string} what the user reads for it */
export function errorMessage(code) {
    return String(ERROR_MESSAGES[code] || _t("The live preview stopped."));
}
