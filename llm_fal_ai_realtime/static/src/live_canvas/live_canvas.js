/** @odoo-module **/
/**
 * LiveCanvas: the picture forms as you type.
 *
 * Prompt and parameters in, frames drawn on a <canvas>, fps and latency shown, a clear state
 * (connecting / live / waiting / reconnecting / error) with the relay's reason in words. The state and
 * which sentence applies come from the client (`client.state`, `client.describe()`'s key and
 * params); this module only holds the translated words. It depends on
 * `@odoo/owl` and Odoo's `_t` only: the browser client (`static/fal_realtime.js`, in the addon's bundle) arrives
 * through the `createClient` prop, tickets through `getTicket`, and Keep through `onKeep`, so
 * the same component runs in Odoo and in a bare page with npm's OWL.
 */
import { Component, onMounted, onWillUnmount, onWillUpdateProps, useRef, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";

/** What the component shows (its `data-status`), derived from the client's connection state. */
export const LIVE_STATUS = Object.freeze({
    CONNECTING: "connecting",
    LIVE: "live",
    RECONNECTING: "reconnecting",
    PAUSED: "paused",
    WAITING: "waiting",
    ERROR: "error",
    CLOSED: "closed",
});

/** The client's states (`STATES` in static/fal_status.js) as this component shows them. */
const FROM_CLIENT_STATE = Object.freeze({
    idle: LIVE_STATUS.PAUSED,
    connecting: LIVE_STATUS.CONNECTING,
    open: LIVE_STATUS.LIVE,
    waiting: LIVE_STATUS.WAITING,
    reconnecting: LIVE_STATUS.RECONNECTING,
    ended: LIVE_STATUS.WAITING, // Odoo's thread goes on: wait for the pen holder, and watch again shortly
    closed: LIVE_STATUS.CLOSED,
    error: LIVE_STATUS.ERROR,
});

/**
 * The badge's words, keyed by `client.describe()`'s key (static/fal_status.js's STATUS_WORDS, in
 * Odoo's translations); keys with details (`retry_next`, ...) fall back to their state's word and say
 * the rest in DETAIL_WORDS. Odoo extracts only literal `_t("...")` calls, hence this table.
 */
const STATUS_LABELS = Object.freeze({
    idle: _t("Paused — type to resume"),
    connecting: _t("Connecting…"),
    open: _t("Live"),
    waiting: _t("Waiting"),
    reconnecting: _t("Reconnecting…"),
    ended: _t("Waiting"),
    closed: _t("Closed"),
    error: _t("Stopped"),
    viewer_open: _t("Watching live"),
    viewer_idle: _t("Watching — reconnecting"),
    elsewhere: _t("Drawing in another tab"),
});

/** Why the client reconnects (`retry.cause`); a relay's refusal (`refused`) shows its own reason. */
const RETRY_CAUSE_WORDS = Object.freeze({
    unreachable: _t("can't reach the relay"),
    lost: _t("lost the connection to the relay"),
    restarting: _t("the relay is restarting"),
});

/** The line under the header for the keys that carry details (an error has its own box). */
const DETAIL_WORDS = Object.freeze({
    retry_next: (p) => _t("Reconnecting: %(why)s — attempt %(attempt)s, next try in %(seconds)s s", p),
    retry_now: (p) => _t("Reconnecting: %(why)s — attempt %(attempt)s, trying now", p),
    input_error: (p) => _t("Check the input: %s", p.reason),
});

/**
 * The browser client's `NO_TICKET` (static/fal_realtime.js): `getTicket` failed, so Odoo, not the
 * relay, refused the pass. This module cannot import the client (it arrives through `createClient`);
 * the LiveCanvas browser test checks that the two agree.
 */
export const NO_TICKET = "NO_TICKET";

/** Error codes in words a user can act on; the reason (the relay's, or Odoo's) is shown beneath. */
export const ERROR_MESSAGES = Object.freeze({
    UNAUTHORIZED: _t("The preview server did not accept your pass. Reload the page; if it keeps happening, an administrator should check the relay's shared secret."),
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

const DEFAULT_ERROR = _t("The live preview stopped.");
// The client `ended` (an older relay ended a viewer's connection when the driver left): a normal end
// in Odoo, so the canvas waits and watches again shortly with a fresh client.
const SESSION_RESUME_MS = 1000;
// While the pen changes hands the old driver may still be connected for a moment: the relay says
// SESSION_BUSY and the client tries again shortly. That is a wait, not an error.
const QUIET_ERRORS = new Set(["SESSION_BUSY"]);
const STATS_REFRESH_MS = 1000;
const MAX_SEED = 2 ** 31 - 1;

/** @returns {number} a random seed the models accept */
function randomSeed() {
    return Math.floor(Math.random() * MAX_SEED);
}

export class LiveCanvas extends Component {
    static template = "llm_fal_ai_realtime.LiveCanvas";
    static props = {
        /** The prompt driving the preview (e.g. the chat composer's text). */
        prompt: { type: String },
        /**
         * `async () => ({url, ticket, app, role, expires_in})`: fetches a fresh ticket. A rejection
         * means Odoo refused it; its message is shown as the reason.
         */
        getTicket: { type: Function },
        /** `(options) => RealtimeClient | Promise<RealtimeClient>`: builds the one browser client. */
        createClient: { type: Function },
        /** `async ({bytes, contentType, width, height, prompt, seed, app}) => void`: posts a frame. */
        onKeep: { type: Function, optional: true },
        /**
         * `async ({prompt, seed}) => void`: asks for a full-quality render (the model's normal endpoint)
         * of the frame on the canvas (or of the current prompt and seed before the first frame).
         */
        onRenderFinal: { type: Function, optional: true },
        /** Initial seed; the user can change it. */
        seed: { type: Number, optional: true, validate: (s) => Number.isInteger(s) && s >= 0 },
        /** Initial strength, 0..1. */
        strength: { type: Number, optional: true, validate: (s) => s >= 0 && s <= 1 },
        steps: { type: Number, optional: true, validate: (s) => Number.isInteger(s) && s >= 1 && s <= 50 },
        width: { type: Number, optional: true, validate: (w) => Number.isInteger(w) && w >= 64 && w <= 2048 },
        height: { type: Number, optional: true, validate: (h) => Number.isInteger(h) && h >= 64 && h <= 2048 },
        /** Least milliseconds between two inputs sent (the client keeps only the newest). */
        throttleMs: { type: Number, optional: true, validate: (t) => t >= 0 },
        /** Optional label shown in the header, e.g. the model name. */
        title: { type: String, optional: true },
        /** The assistant that shapes this canvas (its name is shown beside the title). */
        assistantName: { type: String, optional: true },
        /** The role Odoo expects the ticket to carry, shown until the ticket says (no driver controls flash up). */
        role: { type: String, optional: true, validate: (r) => ["driver", "viewer"].includes(r) },
        /** Who draws (for viewers: "waiting for <name> to draw"). */
        driverName: { type: String, optional: true },
        /** Driver only: the name of a viewer who asks for the pen, shown with a Hand over button. */
        penRequest: { type: String, optional: true },
        /** Viewer: `async () => void` asks the driver for the pen (no button without it). */
        onRequestPen: { type: Function, optional: true },
        /** Owner watching someone else draw: `async () => void` takes the pen back (no asking). */
        onTakePen: { type: Function, optional: true },
        /** Driver: `async () => void` hands the pen to the viewer who asked. */
        onGivePen: { type: Function, optional: true },
        /** The last final render, when it failed: `{error, prompt, seed}`, shown with Retry. */
        finalFailure: { type: [Object, Boolean], optional: true },
        /** Viewer: the pen was asked for and the driver has not answered yet. */
        penRequested: { type: Boolean, optional: true },
        /** Driver: `async () => void` answers a request for the pen with "Not now". */
        onDeclinePen: { type: Function, optional: true },
        /** The pen holder left or went idle: whoever may take it sees "Take the pen" (not "back"). */
        penFree: { type: Boolean, optional: true },
        /** Who has this canvas open right now: `[{id, name, tabs, pen}]`, shown to everyone in the room. */
        watchers: { type: Array, optional: true },
        /** `(id) => url` of a watcher's avatar (Odoo's user avatar route, in Odoo). */
        avatarUrl: { type: Function, optional: true },
        /** This user has the canvas open in another tab too (a SESSION_BUSY is then that tab drawing). */
        otherTab: { type: Boolean, optional: true },
        /** Another tab of this user took the drawing over: this one stops and offers "Draw here". */
        drawsElsewhere: { type: Boolean, optional: true },
        /** `async () => void`: this tab takes the drawing over from the user's other tab. */
        onDrawHere: { type: Function, optional: true },
        /**
         * `(api) => void`: called once mounted with `{keep, canKeep}` (the chat's composer keeps the frame
         * on Enter through it), and with `null` when the canvas goes away.
         */
        onReady: { type: Function, optional: true },
    };
    static defaultProps = {
        seed: 42,
        strength: 0.5,
        steps: 4,
        width: 512,
        height: 512,
        throttleMs: 33,
        title: _t("Live preview"),
        assistantName: "",
        driverName: "",
        penRequest: "",
        penRequested: false,
        penFree: false,
        watchers: [],
        otherTab: false,
        drawsElsewhere: false,
    };

    setup() {
        this.canvasRef = useRef("canvas");
        this.state = useState({
            status: LIVE_STATUS.CONNECTING,
            role: this.props.role || "driver",
            app: "",
            seed: this.props.seed,
            strength: this.props.strength,
            frames: 0,
            fps: 0,
            latency: 0,
            renderer: "",
            statusKey: "connecting", // client.describe()'s key
            detail: "", // the reconnect's why / attempt / next try, or a refused input, in words
            errorCode: "",
            errorMessage: "",
            errorReason: "",
            keeping: false,
            keepError: "",
            keepNotice: "",
            rendering: false,
            renderElapsed: 0,
            asking: false,
            handing: false,
            expanded: false, // narrow screens only: the canvas starts as a compact strip
            elsewhere: false, // driver: another tab of this user draws; this one waits for "Draw here"
        });
        this.client = null;
        this.busy = false; // the relay said SESSION_BUSY since the last open
        this.takeover = false; // "Draw here": connect taking the seat over from this user's other tab
        this.resumeTimer = null;
        this.lastFrame = null; // {image, prompt, seed}: the frame on the canvas and the input it answers
        this.firstTicket = null;
        this.destroyed = false;
        this.statsTimer = null;
        onMounted(() => {
            this.statsTimer = setInterval(() => {
                this.refreshStats();
                this.refreshStatus(); // a reconnect's countdown
            }, STATS_REFRESH_MS);
            this.props.onReady?.({ keep: () => this.onKeep(), canKeep: () => this.canKeep });
            this.start();
        });
        onWillUpdateProps((nextProps) => {
            // The assistant's defaults arrive (or change) after the canvas opened: the next frame uses them.
            for (const input of ["seed", "strength"]) {
                if (nextProps[input] !== this.props[input]) {
                    this.state[input] = nextProps[input];
                }
            }
            const inputs = ["prompt", "seed", "strength", "steps", "width", "height"];
            if (inputs.some((input) => nextProps[input] !== this.props[input])) {
                this.pushInput(nextProps.prompt, nextProps);
            }
            if (nextProps.drawsElsewhere && !this.props.drawsElsewhere && this.isDriver) {
                this.standBy();
            } else if (nextProps.otherTab && this.busy && this.isDriver) {
                this.standBy();
            }
        });
        onWillUnmount(() => {
            this.props.onReady?.(null);
            this.stop();
        });
    }

    // ------------------------------------------------------------------ lifecycle

    /** Fetch a ticket, build the client and connect. */
    async start() {
        let first;
        try {
            first = await this.props.getTicket();
        } catch (error) {
            this.showError(NO_TICKET, error?.message || String(error));
            return;
        }
        if (this.destroyed) {
            return;
        }
        this.firstTicket = first;
        this.state.role = first.role || "driver";
        this.state.app = first.app || "";
        let client;
        try {
            const takeover = this.takeover ? `${first.url.includes("?") ? "&" : "?"}takeover=1` : "";
            client = await this.props.createClient({
                url: first.url + takeover,
                ticket: first.ticket,
                getTicket: () => this.nextTicket(),
                throttleMs: this.props.throttleMs,
            });
        } catch (error) {
            this.showError("INTERNAL_ERROR", `the live preview client could not be loaded (${error?.message || error})`);
            return;
        }
        if (this.destroyed) {
            client.close();
            return;
        }
        this.client = client;
        client.addEventListener("statechange", () => client === this.client && this.onStateChange());
        client.addEventListener("frame", (ev) => client === this.client && this.onFrame(ev.detail));
        client.addEventListener("error", (ev) => client === this.client && this.onError(ev.detail));
        client.addEventListener("inputerror", () => client === this.client && this.refreshStatus());
        if (this.isDriver && this.props.prompt.trim()) {
            this.pushInput(this.props.prompt);
        } else {
            client.connect();
        }
    }

    /** The first renewal reuses the ticket fetched at start; later ones ask Odoo again. */
    async nextTicket() {
        if (this.firstTicket) {
            const ticket = this.firstTicket;
            this.firstTicket = null;
            return ticket;
        }
        return this.props.getTicket();
    }

    /** Close the connection for good and stop the timers (thread changed, chat closed). */
    stop() {
        this.destroyed = true;
        clearInterval(this.statsTimer);
        clearTimeout(this.resumeTimer);
        if (this.client) {
            this.client.close();
            this.client = null;
        }
    }

    // ------------------------------------------------------------------ inputs

    get isDriver() {
        return this.state.role === "driver";
    }

    /**
     * Send the current prompt and controls; the client keeps only the newest input.
     * @param {string} [prompt]
     * @param {object} [props] the props to read steps and size from (the next ones, while they change)
     */
    pushInput(prompt = this.props.prompt, props = this.props) {
        if (!this.client || !this.isDriver || this.state.status === LIVE_STATUS.ERROR || this.state.elsewhere) {
            return;
        }
        const text = (prompt || "").trim();
        if (!text) {
            return;
        }
        this.client.send({
            prompt: text,
            seed: this.state.seed,
            strength: this.state.strength,
            num_inference_steps: props.steps,
            width: props.width,
            height: props.height,
        });
    }

    onSeedInput(ev) {
        const seed = parseInt(ev.target.value, 10);
        if (Number.isInteger(seed) && seed >= 0 && seed <= MAX_SEED) {
            this.state.seed = seed;
            this.pushInput();
        }
    }

    onRandomSeed() {
        this.state.seed = randomSeed();
        this.pushInput();
    }

    onStrengthInput(ev) {
        const strength = parseFloat(ev.target.value);
        if (strength >= 0 && strength <= 1) {
            this.state.strength = strength;
            this.pushInput();
        }
    }

    /** Try again after an error: a fresh ticket and a fresh connection. */
    onRetry() {
        const client = this.client;
        this.client = null; // its last "closed" is not this canvas's state
        client?.close();
        this.state.errorCode = this.state.errorMessage = this.state.errorReason = "";
        this.state.status = LIVE_STATUS.CONNECTING;
        this.state.statusKey = "connecting";
        this.state.detail = "";
        this.start();
    }

    // ------------------------------------------------------------------ client events

    /** The client changed state: show it, and after an end, watch again shortly. */
    onStateChange() {
        if (this.destroyed || !this.client) {
            return;
        }
        this.refreshStatus();
        if (this.client.state === "open") {
            this.busy = false;
            this.state.errorCode = this.state.errorMessage = this.state.errorReason = "";
        } else if (this.client.state === "ended") {
            clearTimeout(this.resumeTimer);
            this.resumeTimer = setTimeout(() => !this.destroyed && this.onRetry(), SESSION_RESUME_MS);
        }
    }

    /** The status and its details as the client describes them (`describe()`'s key and params). */
    refreshStatus() {
        if (this.destroyed || !this.client) {
            return;
        }
        const { key, params } = this.client.describe({ viewer: !this.isDriver });
        this.state.status = FROM_CLIENT_STATE[this.client.state] || LIVE_STATUS.CONNECTING;
        this.state.statusKey = key;
        const cause = params.cause === "refused" ? null : RETRY_CAUSE_WORDS[params.cause];
        const why = String(cause || params.reason); // a refusal in the relay's words
        this.state.detail = DETAIL_WORDS[key] ? String(DETAIL_WORDS[key]({ ...params, why })) : "";
    }

    /**
     * Draw a frame and remember what produced it: `input` is the input this frame answers (the
     * prompt may have changed since it was sent). A viewer sends no input, so it only knows the seed
     * the model reports.
     */
    onFrame({ bitmap, image, result, latencyMs, input }) {
        if (this.destroyed || !image) {
            return;
        }
        const canvas = this.canvasRef.el;
        if (bitmap && canvas) {
            if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
                canvas.width = bitmap.width;
                canvas.height = bitmap.height;
            }
            canvas.getContext("2d").drawImage(bitmap, 0, 0);
            bitmap.close?.();
        }
        const seed = [input?.seed, result?.seed].find(Number.isInteger) ?? null;
        this.lastFrame = { image, prompt: typeof input?.prompt === "string" ? input.prompt : "", seed };
        this.state.frames += 1;
        this.state.renderer = result?.renderer ? String(result.renderer) : "";
        if (latencyMs !== null && latencyMs !== undefined) {
            this.state.latency = Math.round(latencyMs);
        }
        this.refreshStats();
    }

    onError(error) {
        if (this.destroyed) {
            return;
        }
        if (error?.code === "SESSION_BUSY" && this.isDriver) {
            this.busy = true;
            if (this.props.otherTab) {
                this.standBy(); // this user's other tab draws: a choice for the user, not a retry loop
                return;
            }
        }
        if (QUIET_ERRORS.has(error?.code)) {
            return; // the pen is changing hands: the client reconnects, and says so
        }
        this.showError(error?.code || "INTERNAL_ERROR", error?.reason || error?.message || "");
    }

    showError(code, reason) {
        this.state.errorCode = code;
        this.state.errorMessage = ERROR_MESSAGES[code] || DEFAULT_ERROR;
        this.state.errorReason = reason || "";
        if (!this.client) {
            this.state.status = LIVE_STATUS.ERROR; // no client to say so: Odoo refused the ticket, or it did not load
            this.state.statusKey = "error";
            this.state.detail = "";
        }
    }

    refreshStats() {
        if (this.state.rendering) {
            this.state.renderElapsed = Math.round((Date.now() - this.renderStarted) / 1000);
        }
        if (!this.client) {
            return;
        }
        const { fps, p50 } = this.client.stats;
        this.state.fps = Math.round(fps * 10) / 10;
        if (p50) {
            this.state.latency = Math.round(p50);
        }
    }

    // ------------------------------------------------------------------ keep

    get canKeep() {
        return Boolean(this.props.onKeep && this.isDriver && this.state.frames && !this.state.keeping);
    }

    /** Hand the current frame's bytes (as received, not re-encoded) to `onKeep`. */
    async onKeep() {
        if (!this.canKeep || !this.lastFrame) {
            if (this.isDriver && !this.state.keeping) {
                this.state.keepNotice = _t("Nothing to keep yet: the picture appears as you type.");
            }
            return;
        }
        this.state.keepNotice = "";
        const { image, seed, prompt } = this.lastFrame;
        this.state.keeping = true;
        this.state.keepError = "";
        try {
            await this.props.onKeep({
                bytes: new Uint8Array(image.content),
                contentType: image.content_type || "image/jpeg",
                width: image.width,
                height: image.height,
                prompt,
                seed,
                app: this.state.app,
            });
        } catch (error) {
            this.state.keepError = error?.message || String(error);
        } finally {
            this.state.keeping = false;
        }
    }

    get canRenderFinal() {
        const prompt = this.lastFrame?.prompt || this.props.prompt.trim();
        return Boolean(this.props.onRenderFinal && this.isDriver && prompt && !this.state.rendering);
    }

    /**
     * Ask for a final render of what the canvas shows (the last frame's prompt and seed), or of `inputs`
     * (Retry). While it is out the button says how long it has been, and Stop waiting lets go of it.
     * @param {{prompt: string, seed: number|null}} [inputs]
     */
    async onRenderFinal(inputs = undefined) {
        if (!this.canRenderFinal && !(inputs && this.props.onRenderFinal && !this.state.rendering)) {
            return;
        }
        let prompt = inputs?.prompt;
        let seed = inputs?.seed ?? null;
        if (!inputs) {
            const frame = this.lastFrame?.prompt ? this.lastFrame : null;
            prompt = frame ? frame.prompt : this.props.prompt.trim();
            seed = frame && frame.seed !== null ? frame.seed : this.state.seed;
        }
        const token = (this.renderToken = (this.renderToken || 0) + 1);
        this.renderStarted = Date.now();
        this.state.rendering = true;
        this.state.renderElapsed = 0;
        this.state.keepError = "";
        try {
            await this.props.onRenderFinal({ prompt, seed });
        } catch (error) {
            if (token === this.renderToken && !this.destroyed) {
                this.state.keepError = error?.message || String(error);
            }
        } finally {
            if (token === this.renderToken && !this.destroyed) {
                this.state.rendering = false;
            }
        }
    }

    /** Stop waiting for a final render (the request may still reach fal: its message tells). */
    onStopWaiting() {
        this.renderToken = (this.renderToken || 0) + 1;
        this.state.rendering = false;
    }

    onRetryFinal() {
        const failure = this.props.finalFailure;
        if (failure) {
            this.onRenderFinal({ prompt: failure.prompt, seed: failure.seed ?? null });
        }
    }

    get renderingLabel() {
        return _t("Rendering… %s s", this.state.renderElapsed);
    }

    get finalFailureLabel() {
        return _t("The last final render failed: %s", this.props.finalFailure?.error || "");
    }

    // ------------------------------------------------------------------ the pen

    /** Viewer: ask the driver for the pen. */
    async onRequestPen() {
        if (!this.props.onRequestPen || this.state.asking) {
            return;
        }
        this.state.asking = true;
        this.state.keepError = "";
        try {
            await this.props.onRequestPen();
        } catch (error) {
            this.state.keepError = error?.message || String(error);
        } finally {
            this.state.asking = false;
        }
    }

    /** The owner takes the pen back. */
    async onTakePen() {
        if (!this.props.onTakePen || this.state.asking) {
            return;
        }
        this.state.asking = true;
        this.state.keepError = "";
        try {
            await this.props.onTakePen();
        } catch (error) {
            this.state.keepError = error?.message || String(error);
            this.state.asking = false;
        }
    }

    /** Driver: hand the pen to the viewer who asked. */
    async onGivePen() {
        if (!this.props.onGivePen || this.state.handing) {
            return;
        }
        this.state.handing = true;
        this.state.keepError = "";
        try {
            await this.props.onGivePen();
        } catch (error) {
            this.state.keepError = error?.message || String(error);
            this.state.handing = false;
        }
    }

    // ------------------------------------------------------------------ two tabs of one person

    /** Another tab of this user draws: let go of the connection and wait for "Draw here". */
    standBy() {
        const client = this.client;
        this.client = null;
        client?.close();
        clearTimeout(this.resumeTimer);
        this.busy = false;
        this.state.elsewhere = true;
        this.state.status = LIVE_STATUS.WAITING;
        this.state.statusKey = "elsewhere";
        this.state.detail = "";
        this.state.errorCode = this.state.errorMessage = this.state.errorReason = "";
    }

    /** "Draw here": this tab takes the drawing over (the relay moves the seat from the other tab). */
    async onDrawHere() {
        this.state.elsewhere = false;
        this.takeover = true;
        this.state.status = LIVE_STATUS.CONNECTING;
        this.state.statusKey = "connecting";
        try {
            await this.props.onDrawHere?.();
        } catch (error) {
            this.state.keepError = error?.message || String(error);
        }
        this.start();
    }

    // ------------------------------------------------------------------ view helpers

    get statusLabel() {
        const key = this.state.statusKey;
        const label = STATUS_LABELS[key] || STATUS_LABELS[this.client?.state] || STATUS_LABELS[this.state.status];
        return String(label || key);
    }

    get penRequestLabel() {
        return _t("%s asks for the pen.", this.props.penRequest);
    }

    /** Who is in the room, for the line under the header: each person once, the pen holder first. */
    get watcherTitle() {
        return (watcher) => (watcher.pen ? _t("%s (holds the pen)", watcher.name) : watcher.name);
    }

    async onDeclinePen() {
        if (!this.props.onDeclinePen || this.state.handing) {
            return;
        }
        this.state.handing = true;
        this.state.keepError = "";
        try {
            await this.props.onDeclinePen();
        } catch (error) {
            this.state.keepError = error?.message || String(error);
        } finally {
            this.state.handing = false;
        }
    }

    get toggleLabels() {
        return { expand: _t("Enlarge the live canvas"), collapse: _t("Fold the live canvas into a strip") };
    }

    /** Narrow screens: fold the canvas into a strip above the composer, or open it. */
    onToggle() {
        this.state.expanded = !this.state.expanded;
    }

    /** The calm line a viewer reads while nobody draws. */
    get waitingLabel() {
        return this.props.driverName
            ? _t("Waiting for %s to draw", this.props.driverName)
            : _t("Waiting for the pen holder to draw");
    }

    get statusClass() {
        return {
            connecting: "text-bg-info",
            live: "text-bg-success",
            reconnecting: "text-bg-warning",
            paused: "text-bg-secondary",
            waiting: "text-bg-light",
            error: "text-bg-danger",
            closed: "text-bg-secondary",
        }[this.state.status];
    }
}
