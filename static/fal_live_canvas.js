/**
 * `<fal-live-canvas>`: a live fal preview on any web page, as a standard custom element.
 *
 *     <script type="module" src="https://relay.example.com/static/fal_live_canvas.js"></script>
 *     <fal-live-canvas app="local/preview" ticket-url="/fal/ticket" prompt="a red cat" hud></fal-live-canvas>
 *
 * It draws the frames of the one browser client (`fal_realtime.js`) on a canvas in its own
 * shadow DOM, so the page's CSS and the widget's never meet. What it says (states, reconnects,
 * refused inputs) is the client's own `describe()`, shown in a bar under the picture, never over it.
 * The relay serves the docs at `/widget`.
 *
 * @module fal_live_canvas
 */
import { RealtimeClient, STATES, TONES } from "./fal_realtime.js";
import {
    adoptEarlyProperties, defineAttributeProperties, INPUT_ATTRIBUTES, OBSERVED_ATTRIBUTES,
} from "./fal_live_canvas_attributes.js";
import { appUrl, fetchTicket, ticketRequest, withSession } from "./fal_live_canvas_tickets.js";
import { LiveCanvasView } from "./fal_live_canvas_view.js";

/** The element's `state` is the client's: one of these (README, "Connection states"). */
export { STATES } from "./fal_realtime.js";

export const TAG_NAME = "fal-live-canvas";

export { FITS } from "./fal_live_canvas_view.js";

const THROTTLE_MS = 16;
const HUD_REFRESH_MS = 500;
const NOT_CONFIGURED = "Not configured: set app and ticket-url (or ticket, or getTicket)";

/**
 * A live preview of one fal realtime app, drawn as frames arrive.
 *
 * Attributes: `relay`, `app`, `ticket`, `ticket-url`, `mode` (`viewer` never sends), `session`,
 * `prompt`, `seed`, `strength`, `steps`, `width`, `height`, `fit`, `hud`, `label`.
 * Properties: the same names (`ticketUrl`), plus `getTicket`, `limits`, `input`, `state`, `status`,
 * `inputError`, `stats`, `viewer`.
 *
 * @emits statechange  detail `{state, previous}`, state one of the client's STATES (also the `state` attribute)
 * @emits status       detail `{text, tone, state}`: the words the status line shows, when they change
 * @emits inputerror   detail `{field, message}` of an input refused before sending (out of `limits`) or
 *                     rejected by the app, or `null` once the input is fixed
 * @emits frame        detail `{bitmap, bytes, contentType, result, latencyMs, timings, input}`; `input` is
 *                     the input the frame answers (null for a viewer); the bitmap is closed after the
 *                     event, so copy it (`createImageBitmap(bitmap)`) to keep it
 * @emits error        detail `{code, reason, error}`: the relay's x-fal-error code and reason
 */
export class FalLiveCanvas extends HTMLElement {
    static observedAttributes = OBSERVED_ATTRIBUTES;

    constructor() {
        super();
        this._view = new LiveCanvasView(this.attachShadow({ mode: "open" }));
        this._client = null;
        this._state = "";
        this._limits = {};
        this._role = null;
        this._inputs = {};
        this._lastImage = null;
        this._getTicket = null;
        this._startQueued = false;
        this._sendQueued = false;
        this._hudTimer = null;
        this._resize();
        adoptEarlyProperties(this);
    }

    connectedCallback() {
        if (!this._client) {
            this._queueStart();
        }
    }

    disconnectedCallback() {
        // Moving the element (remove, then insert) must not drop the connection.
        queueMicrotask(() => {
            if (!this.isConnected) {
                this._stop();
            }
        });
    }

    attributeChangedCallback(name, previous, value) {
        if (name in INPUT_ATTRIBUTES) {
            this[name] = value;
        } else if (name === "width" || name === "height" || name === "fit") {
            this._resize();
        } else if (name === "hud") {
            this._view.hudShown = value !== null;
            this._refreshHud();
        } else if (name === "label") {
            this._view.label = value;
        } else if (this.isConnected) {
            this._queueStart(); // a connection attribute changed
        }
    }

    /** `async ({app, session, role}) => ({url, ticket, expires_in, role?})`; wins over `ticket-url` and `ticket`. */
    get getTicket() {
        return this._getTicket;
    }

    set getTicket(value) {
        this._getTicket = typeof value === "function" ? value : null;
        if (this.isConnected) {
            this._queueStart();
        }
    }

    /**
     * Input ranges over the client's INPUT_LIMITS, `{field: {min, max, integer?}}` by wire field, e.g.
     * `{num_inference_steps: {min: 1, max: 8, integer: true}}`; an input outside them is not sent.
     */
    get limits() {
        return { ...this._limits };
    }

    set limits(value) {
        this._limits = { ...value };
        if (this._client) {
            this._client.limits = { ...this._client.limits, ...this._limits };
            this._send();
        }
    }

    /** The input sent on each change: the wire fields, e.g. `{prompt, seed, strength, num_inference_steps}`. */
    get input() {
        return { ...this._inputs };
    }

    /** One of the client's STATES, or "" before the element first connects; reflected as the `state` attribute. */
    get state() {
        return this._state;
    }

    /** `{text, tone}`: what the status line says (the browser client's words for its state). */
    get status() {
        return { ...this._view.words };
    }

    /** `{field, message}` of the input refused or rejected, until it is fixed; else null. */
    get inputError() {
        const error = this._client?.inputError;
        return error ? { field: error.field, message: error.reason } : null;
    }

    /**
     * `{fps, lastFps, p50, p95, activity, waitedMs}`: `activity` is `live`, `idle` (nothing asked for;
     * `lastFps` is the rate frames last came at) or `stalled` (an input unanswered for `waitedMs`).
     */
    get stats() {
        return this._client
            ? this._client.stats : { fps: 0, lastFps: 0, p50: 0, p95: 0, activity: "idle", waitedMs: 0 };
    }

    /** True for `mode="viewer"` or a viewer ticket: the element only watches and never sends. */
    get viewer() {
        return this.mode === "viewer" || this._role === "viewer";
    }

    /**
     * Merge wire fields into the input and send it (once per task, however many fields change).
     * `null` or `undefined` removes a field. E.g. `setInput({image_bytes: jpegBytes})`.
     * @param {object} fields
     */
    setInput(fields) {
        for (const [key, value] of Object.entries(fields)) {
            if (value === null || value === undefined || Number.isNaN(value)) {
                delete this._inputs[key];
            } else {
                this._inputs[key] = value;
            }
        }
        if (!this._sendQueued) {
            this._sendQueued = true;
            queueMicrotask(() => {
                this._sendQueued = false;
                this._send();
            });
        }
    }

    /**
     * The current frame as a JPEG: the bytes as received when the app sent a JPEG, else re-encoded.
     * @returns {Promise<Blob>}
     */
    async keep() {
        const image = this._lastImage;
        if (!image) {
            throw new Error("no frame to keep yet");
        }
        const bytes = image.content;
        if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) { // a JPEG, whatever content_type says
            return new Blob([bytes], { type: "image/jpeg" });
        }
        return this._view.toJpeg();
    }

    /** Connect again with a fresh ticket, e.g. after an error. */
    reconnect() {
        this._queueStart();
    }

    _queueStart() {
        if (this._startQueued) {
            return;
        }
        // Wait for the rest of this task, so setting several attributes connects once, with all of them.
        this._startQueued = true;
        queueMicrotask(() => {
            this._startQueued = false;
            if (this.isConnected) {
                this._start();
            }
        });
    }

    _start() {
        const wasRunning = Boolean(this._client);
        this._detach();
        this._role = null;
        const options = this._connectionOptions();
        if (!options) {
            if (wasRunning) {
                this._onState(STATES.CLOSED);
            }
            this._showStatus({ text: NOT_CONFIGURED, tone: TONES.WARN });
            return; // like an <img> without src: setting them starts it
        }
        const client = new RealtimeClient({
            throttleMs: THROTTLE_MS, limits: this._limits, viewer: this.mode === "viewer", ...options,
        });
        this._client = client;
        client.addEventListener("statechange", ({ detail }) => client === this._client && this._onState(detail.state));
        client.addEventListener("frame", ({ detail }) => client === this._client && this._onFrame(detail));
        client.addEventListener("error", ({ detail }) => client === this._client && this._onError(detail));
        client.addEventListener("inputerror", ({ detail }) => client === this._client && this._onInputError(detail));
        this._hudTimer = setInterval(() => {
            this._refreshHud();
            this._renderStatus(); // a reconnect's countdown
        }, HUD_REFRESH_MS);
        client.connect();
        this._send();
    }

    _connectionOptions() {
        const fallbackUrl = this._defaultUrl();
        const source = this._getTicket
            ? () => this._getTicket(this._ticketRequest())
            : this.ticketUrl ? () => fetchTicket(this.ticketUrl, this._ticketRequest()) : null;
        if (source) {
            const getTicket = async () => {
                const answer = await source();
                this._role = answer.role || null;
                if (this.viewer && this._client) {
                    this._client.viewer = true;
                    this._client.discardPending(); // typed before the ticket said this page only watches
                }
                if (!answer.url && !fallbackUrl) {
                    throw new Error("no app: set the app attribute, or answer with a url");
                }
                return { ...answer, url: this._withSession(answer.url || fallbackUrl) };
            };
            return { url: fallbackUrl, getTicket };
        }
        if (!this.ticket || !fallbackUrl) {
            return null;
        }
        return { url: this._withSession(fallbackUrl), ticket: this.ticket };
    }

    _withSession(url) {
        return withSession(url, this.session);
    }

    _ticketRequest() {
        return ticketRequest({ app: this.app, session: this.session, viewer: this.mode === "viewer" });
    }

    _defaultUrl() {
        return appUrl(this.relay, this.app);
    }

    _send() {
        const stopped = this._state === STATES.ERROR || this._state === STATES.ENDED;
        if (!this._client || this.viewer || stopped || !Object.keys(this._inputs).length) {
            return;
        }
        this._client.send({ ...this._inputs });
    }

    _detach() {
        const client = this._client;
        this._client = null;
        client?.close();
        clearInterval(this._hudTimer);
    }

    _stop() {
        if (this._client) {
            this._detach();
            this._onState(STATES.CLOSED);
        }
    }

    _onState(state) {
        const previous = this._state;
        if (state === previous) {
            return;
        }
        this._state = state;
        this.setAttribute("state", state); // for CSS: fal-live-canvas[state="waiting"]
        this._view.watchOnly = this.viewer;
        this._renderStatus();
        this._emit("statechange", { state, previous });
    }

    _onFrame({ bitmap, image, result, latencyMs, input }) {
        if (bitmap) {
            this._view.draw(bitmap);
        }
        if (image && image.content) {
            this._lastImage = image;
        }
        this._emit("frame", {
            bitmap,
            bytes: image?.content ?? null,
            contentType: image?.content_type ?? null,
            result,
            latencyMs,
            timings: result?.timings ?? null,
            input,
        });
        bitmap?.close();
    }

    _onError(error) {
        this._renderStatus();
        this._emit("error", { code: error.code, reason: error.reason, error });
    }

    _onInputError(error) {
        this._renderStatus();
        this._emit("inputerror", error ? { field: error.field, message: error.reason } : null);
    }

    _renderStatus() {
        if (this._client) {
            this._showStatus(this._client.describe());
        }
    }

    _showStatus(words) {
        if (this._view.say(words, this._state)) {
            this._emit("status", { ...words, state: this._state });
        }
    }

    _refreshHud() {
        this._view.showStats(this.stats);
    }

    _resize() {
        this._view.resize(this.getAttribute("width"), this.getAttribute("height"), this.getAttribute("fit"));
    }

    _emit(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }
}

defineAttributeProperties(FalLiveCanvas);

if (!customElements.get(TAG_NAME)) {
    customElements.define(TAG_NAME, FalLiveCanvas);
}
