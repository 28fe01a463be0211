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

/** The element's `state` is the client's: one of these (README, "Connection states"). */
export { STATES } from "./fal_realtime.js";

export const TAG_NAME = "fal-live-canvas";

/** Ways a frame fills the element's box (CSS `object-fit`). */
export const FITS = Object.freeze(["contain", "cover", "fill", "none", "scale-down"]);

/** Attributes (and properties) that set an input field: name -> [wire field, parse]. */
const INPUT_ATTRIBUTES = Object.freeze({
    prompt: ["prompt", String],
    seed: ["seed", (value) => Number.parseInt(value, 10)],
    strength: ["strength", Number],
    steps: ["num_inference_steps", (value) => Number.parseInt(value, 10)],
});

/** Attributes that choose the connection, mirrored as properties of the same (camelCase) name. */
const CONNECTION_ATTRIBUTES = Object.freeze({
    relay: "relay",
    app: "app",
    ticket: "ticket",
    ticketUrl: "ticket-url",
    mode: "mode",
    session: "session",
});

const DEFAULT_SIZE = 512;
const THROTTLE_MS = 16;
const HUD_REFRESH_MS = 500;
const NOT_CONFIGURED = "Not configured: set app and ticket-url (or ticket, or getTicket)";
const JPEG_QUALITY = 0.92;
// The relay this module was loaded from: the default for the `relay` attribute.
const MODULE_ORIGIN = new URL(import.meta.url).origin;

const TEMPLATE = document.createElement("template");
TEMPLATE.innerHTML = `<style>
:host { display: inline-flex; flex-direction: column; vertical-align: top; max-width: 100%; overflow: hidden;
        contain: content; border-radius: 8px; background: #202124; color: #e8eaed;
        font: 13px/1.4 system-ui, sans-serif; }
:host([hidden]) { display: none; }
canvas { display: block; width: 100%; height: auto; min-height: 0; flex: 1 1 auto; }
.bar { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.2em 0.6em; padding: 4px 8px; background: #2b2c30; }
.bar[data-tone="warn"] { background: #4d3d12; color: #fde293; }
.bar[data-tone="error"] { background: #5c2b29; color: #fad2cf; }
.badge { padding: 0 6px; border-radius: 4px; background: #174ea6; color: #d2e3fc; font-weight: 600; font-size: 12px; }
.badge[hidden], .hud[hidden] { display: none; }
.status { flex: 1 1 12em; margin: 0; min-width: 0; }
.hud { display: flex; gap: 0.6em; margin-left: auto; color: #bdc1c6; font: 12px ui-monospace, monospace;
       white-space: nowrap; }
.hud [data-activity="stalled"] { color: #f28b82; }
</style>
<canvas part="canvas" role="img" aria-label="Live preview"></canvas>
<div class="bar" part="bar">
  <span class="badge" part="badge" id="badge" hidden
        title="This page watches a live session; only its driver changes the picture">Watch only</span>
  <p class="status" part="status" id="status" role="status" aria-live="polite"></p>
  <span class="hud" part="hud" aria-hidden="true" hidden><b id="activity">idle</b><span>fps <b id="fps">0.0</b></span
    ><span>p50 <b id="p50">–</b> ms</span><span>p95 <b id="p95">–</b> ms</span></span>
</div>`;

async function fetchTicket(url, request) {
    const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(request),
    });
    if (!response.ok) {
        throw new Error(`${url} answered ${response.status}`);
    }
    const body = await response.json();
    return body.result ?? body; // an Odoo type="json" route wraps its answer in JSON-RPC's `result`
}

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
    static observedAttributes = [
        ...Object.values(CONNECTION_ATTRIBUTES), ...Object.keys(INPUT_ATTRIBUTES), "width", "height", "fit", "hud", "label",
    ];

    constructor() {
        super();
        const root = this.attachShadow({ mode: "open" });
        root.append(TEMPLATE.content.cloneNode(true));
        this._sizeSheet = new CSSStyleSheet();
        root.adoptedStyleSheets = [this._sizeSheet];
        this._canvas = root.querySelector("canvas");
        this._context = this._canvas.getContext("2d");
        this._hud = root.querySelector(".hud");
        this._bar = root.querySelector(".bar");
        this._badge = root.getElementById("badge");
        this._status = root.getElementById("status");
        this._client = null;
        this._state = "";
        this._words = { text: "", tone: TONES.WAIT };
        this._limits = {};
        this._role = null;
        this._inputs = {};
        this._lastImage = null;
        this._getTicket = null;
        this._startQueued = false;
        this._sendQueued = false;
        this._hudTimer = null;
        this._applySize();
        // A page may set properties before this module loads; those landed on the element itself.
        for (const name of [...Object.keys(CONNECTION_ATTRIBUTES), ...Object.keys(INPUT_ATTRIBUTES), "getTicket",
            "limits"]) {
            if (Object.hasOwn(this, name)) {
                const value = this[name];
                delete this[name];
                this[name] = value;
            }
        }
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
            this._applySize();
        } else if (name === "hud") {
            this._hud.hidden = value === null;
            this._refreshHud();
        } else if (name === "label") {
            this._canvas.setAttribute("aria-label", value || "Live preview");
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
        return { ...this._words };
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
        return new Promise((resolve, reject) => {
            this._canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("could not encode the frame"))),
                "image/jpeg", JPEG_QUALITY);
        });
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

    // Load balancers route a live session's viewers to its driver's replica on `?session=`.
    _withSession(url) {
        if (!this.session || new URL(url).searchParams.has("session")) {
            return url;
        }
        return `${url}${url.includes("?") ? "&" : "?"}session=${encodeURIComponent(this.session)}`;
    }

    _ticketRequest() {
        const viewer = this.mode === "viewer";
        if (!viewer && !this.session) {
            return { app: this.app || undefined };
        }
        return { app: this.app || undefined, session: this.session || undefined, role: viewer ? "viewer" : "driver" };
    }

    _defaultUrl() {
        if (!this.app) {
            return "";
        }
        const base = new URL(this.relay || MODULE_ORIGIN, location.href);
        const scheme = base.protocol === "https:" || base.protocol === "wss:" ? "wss:" : "ws:";
        return `${scheme}//${base.host}${base.pathname.replace(/\/+$/, "")}/${this.app}/realtime`;
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
        this._badge.hidden = !this.viewer;
        this._renderStatus();
        this._emit("statechange", { state, previous });
    }

    _onFrame({ bitmap, image, result, latencyMs, input }) {
        if (bitmap) {
            if (this._canvas.width !== bitmap.width || this._canvas.height !== bitmap.height) {
                this._canvas.width = bitmap.width;
                this._canvas.height = bitmap.height;
            }
            this._context.drawImage(bitmap, 0, 0);
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
        if (words.text === this._words.text && words.tone === this._words.tone) {
            return;
        }
        // A countdown ("next try in 3 s") changes only numbers: screen readers hear it once, not each second.
        const counting = words.text.replace(/\d+/g, "#") === this._words.text.replace(/\d+/g, "#");
        this._status.setAttribute("aria-live", counting ? "off" : "polite");
        this._words = words;
        this._bar.dataset.tone = words.tone;
        this._status.dataset.state = this._state;
        this._status.textContent = words.text;
        this._emit("status", { ...words, state: this._state });
    }

    _refreshHud() {
        if (this._hud.hidden) {
            return;
        }
        // Idle shows the rate frames last came at, not a zero that reads as a stall.
        const { fps, lastFps, p50, p95, activity, waitedMs } = this.stats;
        const ms = (value) => (value ? value.toFixed(1) : "–");
        const shown = this._hud.querySelector("#activity");
        shown.textContent = activity === "stalled" ? `stalled ${(waitedMs / 1000).toFixed(1)} s` : activity;
        shown.dataset.activity = activity;
        const rate = activity === "live" && fps ? fps : lastFps; // no rate yet from one or two frames
        this._hud.querySelector("#fps").textContent = rate ? rate.toFixed(1) : "–";
        this._hud.querySelector("#p50").textContent = ms(p50);
        this._hud.querySelector("#p95").textContent = ms(p95);
    }

    _applySize() {
        const size = (name) => Number.parseFloat(this.getAttribute(name)) || DEFAULT_SIZE;
        const fit = FITS.includes(this.getAttribute("fit")) ? this.getAttribute("fit") : "contain";
        const [width, height] = [size("width"), size("height")];
        if (!this._lastImage) {
            [this._canvas.width, this._canvas.height] = [width, height];
        }
        // The page's own CSS on the element (width) overrides this; the picture keeps the ratio.
        this._sizeSheet.replaceSync(
            `:host { width: ${width}px; } canvas { aspect-ratio: ${width} / ${height}; object-fit: ${fit}; }`);
    }

    _emit(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }
}

for (const [property, attribute] of Object.entries(CONNECTION_ATTRIBUTES)) {
    Object.defineProperty(FalLiveCanvas.prototype, property, {
        get() {
            return this.getAttribute(attribute) ?? "";
        },
        set(value) {
            if (value === null || value === undefined) {
                this.removeAttribute(attribute);
            } else {
                this.setAttribute(attribute, value);
            }
        },
    });
}

for (const [property, [field, parse]] of Object.entries(INPUT_ATTRIBUTES)) {
    Object.defineProperty(FalLiveCanvas.prototype, property, {
        get() {
            return this._inputs[field];
        },
        set(value) {
            this.setInput({ [field]: value === null || value === undefined ? undefined : parse(value) });
        },
    });
}

if (!customElements.get(TAG_NAME)) {
    customElements.define(TAG_NAME, FalLiveCanvas);
}
