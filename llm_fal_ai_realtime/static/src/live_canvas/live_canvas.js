/** @odoo-module **/
/**
 * LiveCanvas: the picture forms as you type.
 *
 * Prompt and parameters in, frames drawn on a <canvas>, fps and latency shown, and the connection's
 * state in the client's own names (`data-state`: `idle`, `connecting`, `open`, `waiting`,
 * `reconnecting`, `ended`, `closed`, `error`) with words from status_words.js. It depends on
 * `@odoo/owl` and Odoo's `_t` only: the browser client arrives through the `createClient` prop, tickets
 * through `getTicket`, and Keep through `onKeep`, so the same component runs in Odoo and in a bare page
 * with npm's OWL. The connection (tickets, the client) is live_connection.js's; who is in the room, the
 * pen, the controls and Keep are its sub-components.
 */
import { Component, onMounted, onWillUnmount, onWillUpdateProps, useRef, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { FrameActions } from "./frame_actions/frame_actions.js";
import { InputControls } from "./input_controls/input_controls.js";
import { LiveConnection } from "./live_connection.js";
import { PenActions } from "./pen_actions/pen_actions.js";
import { RoomWatchers } from "./room_watchers/room_watchers.js";
import { errorMessage, stateBadge, statusWords } from "./status_words.js";

export { ERROR_MESSAGES, NO_TICKET } from "./status_words.js";

// While the pen changes hands the old driver may still be connected for a moment: the relay says
// SESSION_BUSY and the client tries again shortly. That is a wait, not an error.
const QUIET_ERRORS = new Set(["SESSION_BUSY"]);
const STATS_REFRESH_MS = 1000;
/** The canvas's own status key while another tab of this user draws (its client is closed). */
const ELSEWHERE = "elsewhere";

export class LiveCanvas extends Component {
    static template = "llm_fal_ai_realtime.LiveCanvas";
    static components = { FrameActions, InputControls, PenActions, RoomWatchers };
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
        /** Narrow screens: open rather than folded into a strip (the chat keeps the user's choice when the
         * canvas remounts, e.g. as the pen changes hands). */
        expanded: { type: Boolean, optional: true },
        /** `(expanded: boolean) => void`: the user opened or folded the canvas. */
        onExpandedChange: { type: Function, optional: true },
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
            clientState: "connecting", // the client's state (STATES in fal_status.js); the element's data-state
            statusKey: "connecting", // client.describe()'s key, or the canvas's own ELSEWHERE
            detail: "", // the reconnect's why / attempt / next try, or a refused input, in words
            role: this.props.role || "driver",
            app: "",
            seed: this.props.seed,
            strength: this.props.strength,
            frames: 0,
            fps: 0,
            latency: 0,
            renderer: "",
            errorCode: "",
            errorMessage: "",
            errorReason: "",
            expanded: Boolean(this.props.expanded), // narrow screens only: a compact strip unless opened
        });
        this.connection = new LiveConnection({
            getTicket: () => this.props.getTicket(),
            createClient: (options) => this.props.createClient(options),
            throttleMs: () => this.props.throttleMs,
            onClient: (ticket, client) => this.onClient(ticket, client),
            onFailure: (code, reason) => this.showError(code, reason),
        });
        this.busy = false; // the relay said SESSION_BUSY since the last open
        this.takeover = false; // "Draw here": connect taking the seat over from this user's other tab
        this.lastFrame = null; // {image, prompt, seed}: the frame on the canvas and the input it answers
        this.frameActions = null; // Keep and Render final's {keep, canKeep}, while they are shown
        this.statsTimer = null;
        onMounted(() => {
            this.statsTimer = setInterval(() => {
                this.refreshStats();
                this.refreshStatus(); // a reconnect's countdown
            }, STATS_REFRESH_MS);
            this.props.onReady?.({
                keep: () => this.frameActions?.keep(),
                canKeep: () => Boolean(this.frameActions?.canKeep()),
            });
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

    /** Fetch a ticket, build the client and connect (`onClient`). */
    start() {
        return this.connection.open({ takeover: this.takeover });
    }

    /** A new client: listen to it, then connect (a driver with a prompt connects by sending it). */
    onClient(ticket, client) {
        this.state.role = ticket.role || "driver";
        this.state.app = ticket.app || "";
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

    /** The connection's client, while there is one. */
    get client() {
        return this.connection.client;
    }

    get destroyed() {
        return this.connection.closed;
    }

    /** Close the connection for good and stop the timers (thread changed, chat closed). */
    stop() {
        clearInterval(this.statsTimer);
        this.connection.close();
    }

    /** Show a status the canvas sets itself (no client speaks for it meanwhile). */
    setStatus(clientState, statusKey = clientState) {
        Object.assign(this.state, { clientState, statusKey, detail: "" });
    }

    clearError() {
        this.state.errorCode = this.state.errorMessage = this.state.errorReason = "";
    }

    /** Try again after an error: a fresh ticket and a fresh connection. */
    onRetry() {
        this.connection.drop();
        this.clearError();
        this.setStatus("connecting");
        this.start();
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
        if (!this.client || !this.isDriver || this.state.clientState === "error" || this.state.statusKey === ELSEWHERE) {
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

    /** The seed or the strength changed in the controls. */
    onInputChange(change) {
        Object.assign(this.state, change);
        this.pushInput();
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
            this.clearError();
        } else if (this.client.state === "ended") {
            this.connection.resumeSoon(() => this.onRetry());
        }
    }

    /** The state and its details as the client describes them (`describe()`'s key and params). */
    refreshStatus() {
        if (this.destroyed || !this.client) {
            return;
        }
        const described = this.client.describe({ viewer: !this.isDriver });
        this.state.clientState = this.client.state;
        this.state.statusKey = described.key;
        this.state.detail = statusWords(described, this.client.state).detail;
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
        this.state.errorMessage = errorMessage(code);
        this.state.errorReason = reason || "";
        if (!this.client) {
            this.setStatus("error"); // no client to say so: Odoo refused the ticket, or it did not load
        }
    }

    refreshStats() {
        if (!this.client) {
            return;
        }
        const { fps, p50 } = this.client.stats;
        this.state.fps = Math.round(fps * 10) / 10;
        if (p50) {
            this.state.latency = Math.round(p50);
        }
    }

    /** @returns {object|null} the frame on the canvas and the input it answers (for Keep and Render final) */
    getFrame() {
        return this.lastFrame;
    }

    /** Keep and Render final came or went: the composer's Enter keeps through them. */
    setFrameActions(api) {
        this.frameActions = api && { keep: api.keep, canKeep: api.canKeep };
    }

    // ------------------------------------------------------------------ two tabs of one person

    /** Another tab of this user draws: let go of the connection and wait for "Draw here". */
    standBy() {
        this.connection.drop();
        this.busy = false;
        this.setStatus("closed", ELSEWHERE);
        this.clearError();
    }

    /** "Draw here": this tab takes the drawing over (the relay moves the seat from the other tab). */
    async onDrawHere() {
        this.takeover = true;
        this.setStatus("connecting");
        try {
            await this.props.onDrawHere?.(); // tells this user's other tabs
        } catch {
            // They learn it from the relay too: it moves the seat to this tab's takeover connection.
        }
        this.start();
    }

    // ------------------------------------------------------------------ view helpers

    get drawsElsewhere() {
        return this.state.statusKey === ELSEWHERE;
    }

    get statusLabel() {
        return statusWords({ key: this.state.statusKey }, this.state.clientState).label;
    }

    get statusClass() {
        return stateBadge(this.state.clientState);
    }

    /** A viewer while nobody draws: the driver has not come yet, or has left. */
    get waitsForDriver() {
        return !this.isDriver && ["waiting", "ended"].includes(this.state.clientState);
    }

    /** The calm line a viewer reads while nobody draws; a free pen is theirs to take, not to wait for. */
    get waitingLabel() {
        if (this.props.penFree) {
            return _t("The pen is free: take it to draw");
        }
        return this.props.driverName
            ? _t("Waiting for %s to draw", this.props.driverName)
            : _t("Waiting for the pen holder to draw");
    }

    get toggleLabels() {
        return { expand: _t("Enlarge the live canvas"), collapse: _t("Fold the live canvas into a strip") };
    }

    /** Narrow screens: fold the canvas into a strip above the composer, or open it. */
    onToggle() {
        this.state.expanded = !this.state.expanded;
        this.props.onExpandedChange?.(this.state.expanded);
    }
}
