/**
 * `RealtimeClient`, one realtime connection through the relay: it opens the socket with a ticket,
 * sends inputs newest-wins, decodes frames to `ImageBitmap`s in order, turns what the relay says
 * into state, errors and the input's error, and reconnects when a close allows it. The inputs on
 * their way (`fal_outbox.js`), ticket renewal (`fal_renewal.js`), the move to a renewed ticket's
 * socket (`fal_handover.js`), the backoff (`fal_reconnect.js`) and the measurements (`fal_stats.js`)
 * each have their own module.
 *
 * @module fal_connection
 */
import { checkInput, INPUT_LIMITS } from "./fal_inputs.js";
import { Handover } from "./fal_handover.js";
import { Outbox } from "./fal_outbox.js";
import {
    CLOSE_CODES, ERROR_CODES, INVALID_INPUT, NO_TICKET, RealtimeError, readCloseReason, readControl,
} from "./fal_protocol.js";
import { nextRetry, RECONNECT_DEFAULTS, retryDelayMs, stateAfterClose } from "./fal_reconnect.js";
import { TicketRenewal } from "./fal_renewal.js";
import { FrameStats } from "./fal_stats.js";
import { describeStatus, STATES } from "./fal_status.js";
import { decode } from "./vendor/msgpack/index.mjs";

const VIEWER_RESUME_MS = 1000;

/**
 * A realtime connection through the relay.
 *
 * @emits statechange  detail `{state}`
 * @emits frame        detail `{bitmap, image, result, latencyMs, input}`; `input` is the input this frame
 *                     answers (null when none was waiting, e.g. for a viewer)
 * @emits message      detail: an x-fal-message payload
 * @emits error        detail: a `RealtimeError`
 * @emits inputerror   detail: the `RealtimeError` (code INVALID_INPUT, with `field`) of an input refused
 *                     before sending or rejected by the app, or null once the input is fixed
 */
export class RealtimeClient extends EventTarget {
    /**
     * @param {object} options
     * @param {string} [options.url] the app's WebSocket URL, without ticket (or from `getTicket`)
     * @param {string} [options.ticket] a ticket, if `getTicket` is not given
     * @param {() => Promise<{url?: string, ticket: string, expires_in?: number}>} [options.getTicket]
     *        fetches a fresh ticket; used at connect, before expiry and on reconnect (without `expires_in`,
     *        the ticket's own `exp` says when it expires)
     * @param {number} [options.throttleMs=0] least time between two inputs sent
     * @param {number} [options.maxInFlight=1] inputs sent but not yet answered
     * @param {{initialDelayMs?: number, maxDelayMs?: number, maxAttempts?: number}} [options.reconnect]
     * @param {boolean} [options.decodeImages=true] decode `images[0]` to an ImageBitmap
     * @param {object} [options.limits] input ranges over INPUT_LIMITS: `{field: {min, max, integer?}}`
     * @param {boolean} [options.viewer=false] watch a live session: never send, reopen an idle connection
     */
    constructor(options = {}) {
        super();
        this.url = options.url || "";
        this.ticket = options.ticket || "";
        this.getTicket = options.getTicket || null;
        this.throttleMs = options.throttleMs ?? 0;
        this.maxInFlight = options.maxInFlight ?? 1;
        this.reconnectOptions = { ...RECONNECT_DEFAULTS, ...options.reconnect };
        this.decodeImages = options.decodeImages ?? true;
        this.limits = { ...INPUT_LIMITS, ...options.limits };
        this.viewer = options.viewer ?? false;
        this.inputError = null; // a RealtimeError with `field`, until the input is fixed
        this.retry = null; // while reconnecting: {attempt, at, since, cause, reason, error}
        this.waitingReason = ""; // the relay's words while a viewer waits for the driver
        this.state = STATES.IDLE;
        this.lastError = null;
        this.lastResult = null;
        this._ws = null;
        this._outbox = new Outbox(() => this._ws, this);
        this._retryTimer = null;
        this._renewal = new TicketRenewal(() => this.getTicket(), (answer) => this._useTicket(answer));
        this._attempts = 0;
        this._handover = null; // the socket opened with a renewed ticket, until it replaces `_ws`
        this._frames = Promise.resolve(); // frames decode one after another, so they are emitted in order
        this._stats = new FrameStats();
        this._closedByUser = false;
        this._opened = false; // the current socket opened
        this._openedAt = 0;
        this._inputRejected = false; // the app refused an input on the current socket
        this._failures = null; // {attempt, since} of the current run of failed connections
        this._sessionEnded = false; // the relay said session_ended: the close that follows is an end
    }

    /**
     * Frames per second over the last two seconds, p50/p95 input-to-frame latency in ms, and whether
     * frames flow: `activity` is `live` (frames coming or an input just sent), `idle` (nothing asked
     * for: `lastFps` is the rate frames last came at) or `stalled` (an input unanswered for `waitedMs`).
     */
    get stats() {
        return this._stats.read(this._outbox.waitedMs, this._outbox.asking);
    }

    /** What a UI shows: `{state, retry, error, inputError, waitingReason}`, the input of `describeStatus`. */
    get status() {
        return {
            state: this.state, retry: this.retry, error: this.lastError, inputError: this.inputError,
            waitingReason: this.waitingReason,
        };
    }

    /** `describeStatus(this.status)`: this client's status in words, `{text, tone}`. */
    describe(options = {}) {
        return describeStatus(this.status, { viewer: this.viewer, ...options });
    }

    /** Open the connection (fetching a ticket first when `getTicket` is given). */
    async connect() {
        this._closedByUser = false;
        clearTimeout(this._retryTimer);
        this._setState(this._attempts ? STATES.RECONNECTING : STATES.CONNECTING);
        try {
            if (this.getTicket && (!this.ticket || this._renewal.expiring)) {
                await this._renewal.renew();
            }
        } catch (error) {
            this._fail(new RealtimeError(NO_TICKET, `could not get a ticket: ${error.message}`));
            return;
        }
        if (this._closedByUser) {
            return;
        }
        const ws = this._socket();
        this._opened = false;
        this._inputRejected = false;
        this._sessionEnded = false;
        ws.onopen = () => {
            this._attempts = 0;
            this._opened = true;
            this._openedAt = Date.now();
            this.lastError = null;
            this.retry = null;
            this._setState(STATES.OPEN);
            this._outbox.flush();
        };
        this._listen(ws);
    }

    /**
     * Queue an input; only the newest unsent input is kept, so typing never builds a backlog.
     * @param {object} input e.g. `{prompt, seed, strength, image_bytes}`
     */
    send(input) {
        if (this.viewer) {
            return; // the relay would refuse it (VIEWER_READ_ONLY) and close
        }
        const problem = checkInput(input, this.limits);
        if (problem) {
            this.discardPending(); // the newest input wins, and it cannot be sent
            this._setInputError(problem);
            return;
        }
        if (this.inputError && (!this.inputError.fromApp || input[this.inputError.field] !== this.inputError.value)) {
            this._setInputError(null); // fixed; one the app rejected waits for a frame or a change of that field
        }
        this._outbox.pending = input;
        if (this.state === STATES.IDLE) {
            this.connect();
        } else {
            this._outbox.flush();
        }
    }

    /** Forget the input waiting to be sent, e.g. when the ticket turns out to be a viewer's. */
    discardPending() {
        this._outbox.discard();
    }

    /** Close for good: no reconnect, timers cleared. */
    close() {
        this._closedByUser = true;
        this._handover?.close();
        this._handover = null;
        this._outbox.stop();
        clearTimeout(this._retryTimer);
        this._renewal.stop();
        if (this._ws && this._ws.readyState <= WebSocket.OPEN) {
            this._ws.close(CLOSE_CODES.NORMAL_CLOSURE);
        }
        this._ws = null;
        this._setState(STATES.CLOSED);
    }

    /** A socket to the app with the current ticket; `takeover` lets a live session's driver hand its seat over. */
    _socket(takeover = false) {
        const separator = this.url.includes("?") ? "&" : "?";
        const query = `fal_jwt_token=${encodeURIComponent(this.ticket)}${takeover ? "&takeover=1" : ""}`;
        const ws = new WebSocket(`${this.url}${separator}${query}`);
        ws.binaryType = "arraybuffer";
        return ws;
    }

    /** Make `ws` the connection. */
    _listen(ws) {
        ws.onmessage = (event) => this._onMessage(event.data);
        ws.onclose = (event) => this._onClose(ws, event);
        this._ws = ws;
    }

    _useTicket(answer) {
        this.ticket = answer.ticket;
        if (answer.url) {
            this.url = answer.url;
        }
        this._handOver(); // an open socket moves to the new ticket now, before the relay ends it with the old
    }

    /** Move to a socket with the renewed ticket (see `fal_handover.js`), when an open one can move. */
    _handOver() {
        const old = this._ws;
        if (!old || old.readyState !== WebSocket.OPEN || this._handover || this._closedByUser) {
            return;
        }
        this._handover = new Handover(this._socket(true), old, this._outbox, {
            handover: () => this._handover,
            socket: () => this._ws,
            adopt: (ws) => {
                this._handover = null;
                this._listen(ws);
            },
            forget: () => {
                this._handover = null;
            },
            receive: (data) => this._onMessage(data),
        });
    }

    _onMessage(data) {
        if (typeof data === "string") {
            this._onControl(data);
            return;
        }
        const received = performance.now();
        const result = decode(new Uint8Array(data));
        const sent = this._outbox.answered();
        const latencyMs = sent === undefined ? null : received - sent.at;
        this._stats.record(received, latencyMs);
        if (sent !== undefined && this.inputError?.fromApp) {
            this._setInputError(null); // the app took an input again
        }
        if (this.state === STATES.WAITING) {
            this._setState(STATES.OPEN); // a relay that does not say session_live
        }
        this._outbox.flush();
        this.lastResult = result;
        const image = result && Array.isArray(result.images) ? result.images[0] : undefined;
        const input = sent === undefined ? null : sent.input;
        this._frames = this._frames.then(() => this._emitFrame(image, result, latencyMs, input));
    }

    async _emitFrame(image, result, latencyMs, input) {
        let bitmap = null;
        if (image && image.content && this.decodeImages) {
            const blob = new Blob([image.content], { type: image.content_type || "image/jpeg" });
            try {
                bitmap = await createImageBitmap(blob);
            } catch (error) {
                this._emit("error", new RealtimeError(ERROR_CODES.BAD_FRAME, `could not decode the image: ${error.message}`));
                return;
            }
        }
        if (this._closedByUser) {
            bitmap?.close();
            return;
        }
        this._emit("frame", { bitmap, image, result, latencyMs, input });
    }

    _onControl(text) {
        const { kind, payload, rejected } = readControl(text);
        if (kind === "message") {
            this._onSessionMessage(payload);
            this._emit("message", payload);
            return;
        }
        if (kind !== "error") {
            return;
        }
        if (payload.error === ERROR_CODES.TICKET_EXPIRED && this._handover) {
            return; // the socket with the renewed ticket takes over at the close
        }
        if (payload.error === ERROR_CODES.TIMEOUT) {
            return; // an idle connection ending is not an error: the next send() reconnects
        }
        if (rejected) { // the app refused the input: the input is wrong, not the connection
            const input = this._outbox.inFlight[0]?.input;
            this._inputRejected = true;
            this._setInputError({ ...rejected, fromApp: true, value: input?.[rejected.field] });
            return;
        }
        this.lastError = new RealtimeError(payload.error || ERROR_CODES.INTERNAL_ERROR, payload.reason);
        this._emit("error", this.lastError);
    }

    _onSessionMessage(payload) {
        if (payload.action === "session_waiting") {
            this.waitingReason = payload.reason || "";
            this._setState(STATES.WAITING);
        } else if (payload.action === "session_live") {
            this.waitingReason = "";
            this._setState(STATES.OPEN);
        } else if (payload.action === "session_ended") {
            this._sessionEnded = true;
        }
    }

    _onClose(ws, event) {
        if (ws !== this._ws) {
            return;
        }
        if (event.code === CLOSE_CODES.TICKET_EXPIRED && this._handover?.open) {
            this._handover.adopt(); // the relay ended the old ticket's socket before the new one had a frame
            return;
        }
        this._ws = null;
        this._outbox.lost();
        if (this._closedByUser) {
            this._setState(STATES.CLOSED);
            return;
        }
        const code = event.code;
        const said = !this.lastError && this._opened && readCloseReason(event.reason);
        if (said) { // the relay ended inside an upstream message, where no x-fal-error may go: its close says why
            this.lastError = new RealtimeError(said.code, said.reason, code);
            this._emit("error", this.lastError);
        } else if (this.lastError) {
            this.lastError.closeCode = code;
        }
        if (code === CLOSE_CODES.TICKET_EXPIRED) {
            this.ticket = ""; // the relay's word on expiry, whatever this clock says: connect() fetches a new one
        }
        const next = stateAfterClose(code, {
            sessionEnded: this._sessionEnded, inputRejected: this._inputRejected, canRenewTicket: Boolean(this.getTicket),
            attempts: this._attempts, maxAttempts: this.reconnectOptions.maxAttempts,
        });
        if (next === STATES.RECONNECTING) {
            this._reconnect(code);
            return;
        }
        this._renewal.stop(); // an idle, ended or failed client fetches no tickets; connect() gets one when needed
        if (next === STATES.ERROR && !this.lastError) {
            this._fail(new RealtimeError(ERROR_CODES.INTERNAL_ERROR, event.reason || "connection lost", code));
            return;
        }
        this._setState(next); // an error's x-fal-error was emitted when it arrived
        if (next === STATES.IDLE && this.viewer) { // a viewer has no input to reopen the connection with
            this._retryTimer = setTimeout(() => this.connect(), VIEWER_RESUME_MS);
        }
    }

    _reconnect(code) {
        this._attempts += 1;
        const delayMs = retryDelayMs(this._attempts, this.reconnectOptions);
        ({ run: this._failures, retry: this.retry } = nextRetry(this._failures, {
            code, delayMs, opened: this._opened, openedAt: this._openedAt, error: this.lastError,
        }));
        this._setState(STATES.RECONNECTING);
        this._retryTimer = setTimeout(() => this.connect(), delayMs);
    }

    _setInputError(problem) {
        if (!problem && !this.inputError) {
            return;
        }
        this.inputError = problem && Object.assign(new RealtimeError(INVALID_INPUT, problem.message), {
            field: problem.field, fromApp: Boolean(problem.fromApp), value: problem.value,
        });
        this._emit("inputerror", this.inputError);
    }

    _fail(error) {
        this._renewal.stop();
        this.lastError = error;
        this._emit("error", error); // the error first, then the state, as when the relay refuses
        this._setState(STATES.ERROR);
    }

    _setState(state) {
        if (this.state !== state) {
            this.state = state;
            this._emit("statechange", { state });
        }
    }

    _emit(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }
}
