/** @odoo-module **/
/**
 * LiveCanvas: the picture forms as you type.
 *
 * Prompt and parameters in, frames drawn on a <canvas>, fps and latency shown, a clear state
 * (connecting / live / reconnecting / error) with the relay's reason in words. It depends on
 * `@odoo/owl` only: the browser client (`static/fal_realtime.js`, in the addon's bundle) arrives
 * through the `createClient` prop, tickets through `getTicket`, and Keep through `onKeep`, so
 * the same component runs in Odoo and in a bare page with npm's OWL.
 */
import { Component, onMounted, onWillUnmount, onWillUpdateProps, useRef, useState } from "@odoo/owl";

/** What the component shows, derived from the client's connection state. */
export const LIVE_STATUS = Object.freeze({
    CONNECTING: "connecting",
    LIVE: "live",
    RECONNECTING: "reconnecting",
    PAUSED: "paused",
    ERROR: "error",
    CLOSED: "closed",
});

const STATUS_LABELS = Object.freeze({
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    paused: "Paused — type to resume",
    error: "Stopped",
    closed: "Closed",
});

/**
 * The browser client's `NO_TICKET` (static/fal_realtime.js): `getTicket` failed, so Odoo, not the
 * relay, refused the pass. This module cannot import the client (it arrives through `createClient`);
 * the LiveCanvas browser test checks that the two agree.
 */
export const NO_TICKET = "NO_TICKET";

/** Error codes in words a user can act on; the reason (the relay's, or Odoo's) is shown beneath. */
export const ERROR_MESSAGES = Object.freeze({
    UNAUTHORIZED: "The preview server did not accept your pass. Reload the page; if it keeps happening, an administrator should check the relay's shared secret.",
    TICKET_EXPIRED: "Your preview pass expired. Reconnecting with a fresh one…",
    APP_NOT_ALLOWED: "This model is not enabled on the preview server. Ask an administrator to allow it.",
    ORIGIN_NOT_ALLOWED: "The preview server does not accept connections from this Odoo address. Ask an administrator to add it.",
    FRAME_TOO_LARGE: "That input is too large for the live preview. Try a shorter prompt or a smaller image.",
    BAD_FRAME: "The preview server could not read the input.",
    BAD_REQUEST: "The preview server could not understand the request.",
    RATE_LIMITED: "You are going faster than the preview allows. It will catch up in a moment.",
    CLIENT_TOO_SLOW: "This page stopped taking frames for a while (a busy or hidden tab). Reconnecting…",
    TOO_MANY_CONNECTIONS: "Too many live previews are open right now. Close another one or try again shortly.",
    UPSTREAM_UNAVAILABLE: "The image model cannot be reached right now. Trying again…",
    UPSTREAM_ERROR: "The image model reported an error.",
    VIEWER_READ_ONLY: "You are watching this preview; only the conversation's owner can change it.",
    SESSION_BUSY: "This conversation's live preview is already open in another tab or window. It will take over when that one closes.",
    SESSION_ENDED: "The owner closed the live preview. Try again once they reopen it.",
    SESSION_EXPIRED: "This live preview reached its time limit. Type to start a new one.",
    TIMEOUT: "The preview server took too long to answer.",
    INTERNAL_ERROR: "The preview server had a problem.",
    [NO_TICKET]: "Odoo refused to give you a pass for this live preview.",
});

const DEFAULT_ERROR = "The live preview stopped.";
const SESSION_ENDED_CLOSE_CODE = 4004;
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
    };
    static defaultProps = {
        seed: 42,
        strength: 0.5,
        steps: 4,
        width: 512,
        height: 512,
        throttleMs: 33,
        title: "Live preview",
    };

    setup() {
        this.canvasRef = useRef("canvas");
        this.state = useState({
            status: LIVE_STATUS.CONNECTING,
            role: "driver",
            app: "",
            seed: this.props.seed,
            strength: this.props.strength,
            frames: 0,
            fps: 0,
            latency: 0,
            renderer: "",
            waiting: false,
            errorCode: "",
            errorMessage: "",
            errorReason: "",
            keeping: false,
            keepError: "",
            rendering: false,
        });
        this.client = null;
        this.sessionEnded = false;
        this.lastFrame = null; // {image, prompt, seed}: the frame on the canvas and the input it answers
        this.firstTicket = null;
        this.destroyed = false;
        this.statsTimer = null;
        onMounted(() => {
            this.statsTimer = setInterval(() => this.refreshStats(), STATS_REFRESH_MS);
            this.start();
        });
        onWillUpdateProps((nextProps) => {
            if (nextProps.prompt !== this.props.prompt) {
                this.pushInput(nextProps.prompt);
            }
        });
        onWillUnmount(() => this.stop());
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
            client = await this.props.createClient({
                url: first.url,
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
        client.addEventListener("statechange", (ev) => this.onStateChange(ev.detail.state));
        client.addEventListener("frame", (ev) => this.onFrame(ev.detail));
        client.addEventListener("error", (ev) => this.onError(ev.detail));
        client.addEventListener("message", (ev) => this.onMessage(ev.detail));
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
     */
    pushInput(prompt = this.props.prompt) {
        if (!this.client || !this.isDriver || this.state.status === LIVE_STATUS.ERROR) {
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
            num_inference_steps: this.props.steps,
            width: this.props.width,
            height: this.props.height,
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
        if (this.client) {
            this.client.close();
            this.client = null;
        }
        this.state.errorCode = this.state.errorMessage = this.state.errorReason = "";
        this.state.status = LIVE_STATUS.CONNECTING;
        this.sessionEnded = false;
        this.start();
    }

    // ------------------------------------------------------------------ client events

    onStateChange(clientState) {
        const status = {
            connecting: LIVE_STATUS.CONNECTING,
            open: LIVE_STATUS.LIVE,
            reconnecting: LIVE_STATUS.RECONNECTING,
            idle: LIVE_STATUS.PAUSED,
            closed: LIVE_STATUS.CLOSED,
            error: LIVE_STATUS.ERROR,
        }[clientState];
        if (!status || this.destroyed) {
            return;
        }
        this.state.status = status;
        if (status === LIVE_STATUS.LIVE) {
            this.state.errorCode = this.state.errorMessage = this.state.errorReason = "";
        }
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
        this.state.waiting = false;
        this.state.renderer = result?.renderer ? String(result.renderer) : "";
        if (latencyMs !== null && latencyMs !== undefined) {
            this.state.latency = Math.round(latencyMs);
        }
        this.refreshStats();
    }

    /** x-fal-message: live-session news for viewers. */
    onMessage(payload) {
        if (payload?.action === "session_waiting") {
            this.state.waiting = true;
        } else if (payload?.action === "session_ended") {
            this.sessionEnded = true;
        }
    }

    onError(error) {
        if (this.destroyed) {
            return;
        }
        if (this.sessionEnded || error?.closeCode === SESSION_ENDED_CLOSE_CODE) {
            this.showError("SESSION_ENDED", error?.reason || "");
            return;
        }
        this.showError(error?.code || "INTERNAL_ERROR", error?.reason || error?.message || "");
    }

    showError(code, reason) {
        this.state.errorCode = code;
        this.state.errorMessage = ERROR_MESSAGES[code] || DEFAULT_ERROR;
        this.state.errorReason = reason || "";
        if (code === NO_TICKET || !this.client || this.client.state === "error") {
            this.state.status = LIVE_STATUS.ERROR;
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

    // ------------------------------------------------------------------ keep

    get canKeep() {
        return Boolean(this.props.onKeep && this.isDriver && this.state.frames && !this.state.keeping);
    }

    /** Hand the current frame's bytes (as received, not re-encoded) to `onKeep`. */
    async onKeep() {
        if (!this.canKeep || !this.lastFrame) {
            return;
        }
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

    /** Ask for a final render of what the canvas shows: the last frame's prompt and seed. */
    async onRenderFinal() {
        if (!this.canRenderFinal) {
            return;
        }
        const frame = this.lastFrame?.prompt ? this.lastFrame : null;
        const prompt = frame ? frame.prompt : this.props.prompt.trim();
        const seed = frame && frame.seed !== null ? frame.seed : this.state.seed;
        this.state.rendering = true;
        this.state.keepError = "";
        try {
            await this.props.onRenderFinal({ prompt, seed });
        } catch (error) {
            this.state.keepError = error?.message || String(error);
        } finally {
            this.state.rendering = false;
        }
    }

    // ------------------------------------------------------------------ view helpers

    get statusLabel() {
        if (this.state.status === LIVE_STATUS.LIVE && !this.isDriver) {
            return "Watching live";
        }
        return STATUS_LABELS[this.state.status] || this.state.status;
    }

    get statusClass() {
        return {
            connecting: "text-bg-info",
            live: "text-bg-success",
            reconnecting: "text-bg-warning",
            paused: "text-bg-secondary",
            error: "text-bg-danger",
            closed: "text-bg-secondary",
        }[this.state.status];
    }
}
