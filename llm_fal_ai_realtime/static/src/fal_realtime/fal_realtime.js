/**
 * The browser client for the fal-realtime relay (and for fal's realtime wire protocol).
 *
 * One ES module, no framework: it opens the WebSocket with a short-lived ticket, sends msgpack
 * inputs with newest-input-wins throttling, decodes frames to `ImageBitmap`s, surfaces
 * `x-fal-error` frames as `RealtimeError`s, renews its ticket before expiry and reconnects with
 * backoff. The demo page, the `<fal-live-canvas>` widget and the Odoo `LiveCanvas` all use it.
 *
 * It also owns what a UI needs to say, so no UI re-reads errors: the connection's `state` (a live
 * session's viewer `waiting` for its driver, a session `ended`, ...), why and when it reconnects
 * (`retry`), an input it refused or the app rejected (`inputError`, from `INPUT_LIMITS` or the
 * app's own validation), whether frames flow, are idle or stall (`stats.activity`), and the words
 * for all of it (`describeStatus`, `client.describe()`).
 *
 * @module fal_realtime
 */
import { checkInput, INPUT_LIMITS, readValidationError } from "./fal_inputs.js";
import { describeStatus, QUIET_RECONNECT_MS, RETRY_CAUSES, RETRY_WORDS, STATES } from "./fal_status.js";
import { decode, encode } from "./vendor/msgpack/index.js";

export { checkInput, fieldName, INPUT_LIMITS, readValidationError } from "./fal_inputs.js";
export { describeStatus, QUIET_RECONNECT_MS, STATES, STATUS_WORDS, statusKey, TONES } from "./fal_status.js";

/** WebSocket close codes; mirrors `realtime_server.protocol.CloseCode` (a test keeps them equal). */
export const CLOSE_CODES = Object.freeze({
    NORMAL_CLOSURE: 1000,
    GOING_AWAY: 1001,
    PROTOCOL_ERROR: 1002,
    UNSUPPORTED_DATA: 1003,
    INVALID_DATA: 1007,
    POLICY_VIOLATION: 1008,
    MESSAGE_TOO_BIG: 1009,
    INTERNAL_ERROR: 1011,
    SERVICE_RESTART: 1012,
    TRY_AGAIN_LATER: 1013,
    BAD_GATEWAY: 1014,
    TICKET_EXPIRED: 4001,
    SESSION_EXPIRED: 4002,
    IDLE_TIMEOUT: 4003,
    SESSION_ENDED: 4004,
});

/** `error` values of x-fal-error frames; mirrors `realtime_server.protocol.ErrorCode`. */
export const ERROR_CODES = Object.freeze({
    UNAUTHORIZED: "UNAUTHORIZED",
    TICKET_EXPIRED: "TICKET_EXPIRED",
    ORIGIN_NOT_ALLOWED: "ORIGIN_NOT_ALLOWED",
    APP_NOT_ALLOWED: "APP_NOT_ALLOWED",
    BAD_REQUEST: "BAD_REQUEST",
    BAD_FRAME: "BAD_FRAME",
    FRAME_TOO_LARGE: "FRAME_TOO_LARGE",
    RATE_LIMITED: "RATE_LIMITED",
    CLIENT_TOO_SLOW: "CLIENT_TOO_SLOW",
    TOO_MANY_CONNECTIONS: "TOO_MANY_CONNECTIONS",
    VIEWER_READ_ONLY: "VIEWER_READ_ONLY",
    SESSION_BUSY: "SESSION_BUSY",
    UPSTREAM_UNAVAILABLE: "UPSTREAM_UNAVAILABLE",
    UPSTREAM_ERROR: "UPSTREAM_ERROR",
    TIMEOUT: "TIMEOUT",
    SESSION_EXPIRED: "SESSION_EXPIRED",
    INTERNAL_ERROR: "INTERNAL_ERROR",
});

/** `code` of the error when `getTicket` fails: the page's own backend refused, not the relay. */
export const NO_TICKET = "NO_TICKET";

/** `code` of `inputError`: an input out of range, refused before sending or rejected by the app. */
export const INVALID_INPUT = "INVALID_INPUT";

// Close codes after which trying again cannot help: the request itself is refused.
const FATAL_CLOSE_CODES = new Set([
    CLOSE_CODES.UNSUPPORTED_DATA,
    CLOSE_CODES.INVALID_DATA,
    CLOSE_CODES.POLICY_VIOLATION,
    CLOSE_CODES.MESSAGE_TOO_BIG,
]);
const STALL_MS = 3000;
const STALL_HUD_MS = 1500; // an input unanswered this long is a stall, not a render
const VIEWER_RESUME_MS = 1000;
const RENEW_RETRY_MS = 5000; // first retry of a refused ticket renewal (at most a tenth of the lifetime)
const RENEW_RETRY_MAX_MS = 60000;
const HANDOVER_QUIET_MS = 1000; // a handover socket with no input to send is adopted after this long without a refusal
const STATS_WINDOW_MS = 2000;
const LATENCY_SAMPLES = 120;

/** An x-fal-error from the relay or upstream, or a connection lost for good. */
export class RealtimeError extends Error {
    /**
     * @param {string} code one of ERROR_CODES (or an upstream's own code)
     * @param {string} reason what happened, in words a person can act on
     * @param {number} [closeCode] the WebSocket close code that followed, once known
     */
    constructor(code, reason, closeCode = undefined) {
        super(reason ? `${code}: ${reason}` : code);
        this.name = "RealtimeError";
        this.code = code;
        this.reason = reason || "";
        this.closeCode = closeCode;
    }
}

/**
 * What a text frame from the relay or the app says, read in one place for every socket the client
 * opens (the connection and a handover socket alike).
 *
 * @param {string} text the frame
 * @returns {{kind: "error"|"message"|"other", payload: object|null, rejected: {field: string, message: string}|null}}
 *          `error`: an x-fal-error, with `rejected` set when it is the app refusing an input (the input is
 *          wrong, not the connection); `message`: an x-fal-message; `other`: anything else
 */
export function readControl(text) {
    let payload = null;
    try {
        payload = JSON.parse(text);
    } catch {
        return { kind: "other", payload: null, rejected: null };
    }
    if (payload?.type === "x-fal-error") {
        return { kind: "error", payload, rejected: readValidationError(payload.reason) };
    }
    return { kind: payload?.type === "x-fal-message" ? "message" : "other", payload, rejected: null };
}

/**
 * How long a ticket lives, in ms: the ticket endpoint's `expires_in`, else the ticket's own `exp - iat`
 * (both stamped by its issuer's clock, so this one's skew does not matter; read, not verified: it
 * only schedules the renewal), else `exp` against this clock, else 300 s.
 */
export function ticketLifetimeMs(ticket, expiresIn = undefined) {
    if (expiresIn > 0) {
        return expiresIn * 1000;
    }
    try {
        const part = ticket.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
        const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
        const lifetime = Number.isFinite(claims.iat) ? claims.exp - claims.iat : claims.exp - Date.now() / 1000;
        if (Number.isFinite(lifetime) && lifetime > 0) {
            return lifetime * 1000;
        }
    } catch {
        // not a JWT the client can read: fall back to the usual lifetime
    }
    return 300 * 1000;
}

function percentile(sorted, p) {
    if (!sorted.length) {
        return 0;
    }
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

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
        this.reconnectOptions = { initialDelayMs: 400, maxDelayMs: 8000, maxAttempts: Infinity, ...options.reconnect };
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
        this._pending = null;
        this._inFlight = [];
        this._lastSendAt = -Infinity; // the first input goes at once, however soon after the page loaded
        this._sendTimer = null;
        this._retryTimer = null;
        this._renewTimer = null;
        this._attempts = 0;
        this._ticketExpiresAt = 0;
        this._renewals = 0; // bumped to cancel ticket requests still in flight
        this._lastInput = null; // the newest input sent, sent again on a handover
        this._handoverWs = null; // the socket opened with a renewed ticket, until it replaces `_ws`
        this._adoptHandover = null; // makes `_handoverWs` the connection
        this._frames = Promise.resolve(); // frames decode one after another, so they are emitted in order
        this._frameTimes = [];
        this._latencies = [];
        this._closedByUser = false;
        this._opened = false; // the current socket opened
        this._openedAt = 0;
        this._inputRejected = false; // the app refused an input on the current socket
        this._failures = null; // {attempt, since} of the current run of failed connections
        this._sessionEnded = false; // the relay said session_ended: the close that follows is an end
        this._lastRate = 0; // frames per second of the last run of frames
    }

    /**
     * Frames per second over the last two seconds, p50/p95 input-to-frame latency in ms, and whether
     * frames flow: `activity` is `live` (frames coming or an input just sent), `idle` (nothing asked
     * for: `lastFps` is the rate frames last came at) or `stalled` (an input unanswered for `waitedMs`).
     */
    get stats() {
        const now = performance.now();
        this._frameTimes = this._frameTimes.filter((t) => now - t <= STATS_WINDOW_MS);
        const sorted = [...this._latencies].sort((a, b) => a - b);
        const waitedMs = this._inFlight.length ? now - this._inFlight[0].at : 0;
        const asking = this._inFlight.length > 0 || this._pending !== null;
        let activity = "idle";
        if (waitedMs > STALL_HUD_MS) {
            activity = "stalled";
        } else if (asking || this._frameTimes.length) {
            activity = "live";
        }
        return {
            fps: (this._frameTimes.length * 1000) / STATS_WINDOW_MS,
            lastFps: this._lastRate,
            p50: percentile(sorted, 50),
            p95: percentile(sorted, 95),
            activity,
            waitedMs,
        };
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
            if (this.getTicket && (!this.ticket || Date.now() > this._ticketExpiresAt - 5000)) {
                await this._renewTicket();
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
            this._flush();
        };
        ws.onmessage = (event) => this._onMessage(event.data);
        ws.onclose = (event) => this._onClose(ws, event);
        this._ws = ws;
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
        this._pending = input;
        if (this.state === STATES.IDLE) {
            this.connect();
        } else {
            this._flush();
        }
    }

    /** Forget the input waiting to be sent, e.g. when the ticket turns out to be a viewer's. */
    discardPending() {
        this._pending = null;
        clearTimeout(this._sendTimer);
    }

    /** Close for good: no reconnect, timers cleared. */
    close() {
        this._closedByUser = true;
        if (this._handoverWs) {
            this._handoverWs.close(CLOSE_CODES.NORMAL_CLOSURE);
            this._handoverWs = null;
        }
        clearTimeout(this._sendTimer);
        clearTimeout(this._retryTimer);
        this._stopRenewing();
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

    /**
     * Move to a socket opened with the renewed ticket before the relay ends the current one at the old
     * ticket's expiry (TICKET_EXPIRED), so the user never notices: the new socket opens beside the old,
     * the newest input is sent on it again (a live session's driver takes its own seat over), and it
     * replaces the old one at its first frame or message (after a quiet second when there is nothing to
     * send), or when the relay ends the old one first. A handover refused (an x-fal-error that is not the
     * app refusing the input) or closed before that is dropped; the old socket carries on until it
     * expires, and sends the input that went on the handover only.
     */
    _handover() {
        const old = this._ws;
        if (!old || old.readyState !== WebSocket.OPEN || this._handoverWs || this._closedByUser) {
            return;
        }
        const ws = this._socket(true);
        this._handoverWs = ws;
        const input = this._pending ?? this._lastInput;
        let unsent = false; // the input went on this socket only: lost if it fails
        let quiet = null;
        let sent = []; // the input sent on the new socket, in flight once it is adopted
        const adopt = () => {
            clearTimeout(quiet);
            if (this._handoverWs !== ws || this._ws !== old) {
                ws.close(CLOSE_CODES.NORMAL_CLOSURE);
                return false;
            }
            this._handoverWs = this._adoptHandover = null;
            old.onmessage = null;
            old.onclose = null;
            old.close(CLOSE_CODES.NORMAL_CLOSURE);
            this._ws = ws;
            this._inFlight = sent;
            if (this._lastInput !== input && this._pending === null) {
                this._pending = this._lastInput; // a newer input went out on the old socket meanwhile
            }
            ws.onmessage = (event) => this._onMessage(event.data);
            ws.onclose = (event) => this._onClose(ws, event);
            return true;
        };
        this._adoptHandover = adopt;
        ws.onopen = () => {
            if (input === null) {
                quiet = setTimeout(adopt, HANDOVER_QUIET_MS);
                return;
            }
            ws.send(encode(input));
            this._lastInput = input;
            unsent = this._pending === input;
            if (unsent) {
                this._pending = null;
            }
            sent = [{ at: performance.now(), input }];
        };
        // Refused or gone before it was adopted: the old socket stays, and sends the input this one took.
        const drop = () => {
            clearTimeout(quiet);
            if (this._handoverWs !== ws) {
                return;
            }
            this._handoverWs = this._adoptHandover = null;
            if (unsent && this._pending === null && this._ws === old) {
                this._pending = input;
                this._flush();
            }
        };
        ws.onmessage = (event) => {
            const control = typeof event.data === "string" ? readControl(event.data) : null;
            if (control?.kind === "error" && !control.rejected) { // the app refusing the input is no refusal
                drop();
                ws.onclose = null;
                ws.close(CLOSE_CODES.NORMAL_CLOSURE);
                return;
            }
            if (adopt()) {
                this._onMessage(event.data);
            }
        };
        ws.onclose = drop;
    }

    async _renewTicket() {
        const renewal = this._renewals;
        const answer = await this.getTicket();
        if (renewal !== this._renewals) {
            return; // closed, failed or gone idle meanwhile: no ticket, no next renewal
        }
        this.ticket = answer.ticket;
        if (answer.url) {
            this.url = answer.url;
        }
        const lifetime = ticketLifetimeMs(answer.ticket, answer.expires_in);
        this._ticketExpiresAt = Date.now() + lifetime;
        // Renew at 80% of the lifetime so a reconnect never waits for a ticket round trip; a refused
        // renewal is tried again soon, then less and less often (the open connection does not need it).
        this._scheduleRenewal(lifetime * 0.8, Math.min(RENEW_RETRY_MS, lifetime * 0.1));
        this._handover(); // an open socket moves to the new ticket now, before the relay ends it with the old
    }

    _scheduleRenewal(delayMs, retryMs) {
        clearTimeout(this._renewTimer);
        const renewal = this._renewals;
        this._renewTimer = setTimeout(() => this._renewTicket().catch(() => {
            if (renewal === this._renewals) { // not closed, failed or idle while the request was out
                this._scheduleRenewal(retryMs, Math.min(RENEW_RETRY_MAX_MS, retryMs * 2));
            }
        }), delayMs);
    }

    _stopRenewing() {
        this._renewals += 1;
        clearTimeout(this._renewTimer);
    }

    _flush() {
        const ws = this._ws;
        if (!ws || ws.readyState !== WebSocket.OPEN || this._pending === null) {
            return;
        }
        const now = performance.now();
        while (this._inFlight.length && now - this._inFlight[0].at > STALL_MS) {
            this._inFlight.shift(); // upstream dropped that input (its own newest-wins); stop waiting for it
        }
        if (this._inFlight.length >= this.maxInFlight) {
            return;
        }
        const wait = this.throttleMs - (now - this._lastSendAt);
        if (wait > 0) {
            clearTimeout(this._sendTimer);
            this._sendTimer = setTimeout(() => this._flush(), wait);
            return;
        }
        const input = this._pending;
        this._pending = null;
        ws.send(encode(input));
        this._lastInput = input;
        this._lastSendAt = now;
        this._inFlight.push({ at: now, input });
    }

    _onMessage(data) {
        if (typeof data === "string") {
            const { kind, payload, rejected } = readControl(data);
            if (kind === "error") {
                if (payload.error === ERROR_CODES.TICKET_EXPIRED && this._handoverWs) {
                    return; // the socket with the renewed ticket takes over at the close
                }
                if (payload.error === ERROR_CODES.TIMEOUT) {
                    return; // an idle connection ending is not an error: the next send() reconnects
                }
                if (rejected) { // the app refused the input: the input is wrong, not the connection
                    const input = this._inFlight[0]?.input;
                    this._inputRejected = true;
                    this._setInputError({ ...rejected, fromApp: true, value: input?.[rejected.field] });
                    return;
                }
                this.lastError = new RealtimeError(payload.error || ERROR_CODES.INTERNAL_ERROR, payload.reason);
                this._emit("error", this.lastError);
            } else if (kind === "message") {
                this._onSessionMessage(payload);
                this._emit("message", payload);
            }
            return;
        }
        const received = performance.now();
        const result = decode(new Uint8Array(data));
        const sent = this._inFlight.shift();
        const latencyMs = sent === undefined ? null : received - sent.at;
        if (latencyMs !== null) {
            this._latencies.push(latencyMs);
            if (this._latencies.length > LATENCY_SAMPLES) {
                this._latencies.shift();
            }
        }
        this._frameTimes.push(received);
        this._measureRate();
        if (sent !== undefined && this.inputError?.fromApp) {
            this._setInputError(null); // the app took an input again
        }
        if (this.state === STATES.WAITING) {
            this._setState(STATES.OPEN); // a relay that does not say session_live
        }
        this._flush();
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

    _onClose(ws, event) {
        if (ws !== this._ws) {
            return;
        }
        if (event.code === CLOSE_CODES.TICKET_EXPIRED && this._handoverWs?.readyState === WebSocket.OPEN) {
            this._adoptHandover(); // the relay ended the old ticket's socket before the new one had a frame
            return;
        }
        this._ws = null;
        this._inFlight = [];
        if (this._closedByUser) {
            this._setState(STATES.CLOSED);
            return;
        }
        const code = event.code;
        const said = !this.lastError && this._opened && /^([A-Z][A-Z_]*): (.*)$/s.exec(event.reason || "");
        if (said) { // the relay ended inside an upstream message, where no x-fal-error may go: its close says why
            this.lastError = new RealtimeError(said[1], said[2], code);
            this._emit("error", this.lastError);
        } else if (this.lastError) {
            this.lastError.closeCode = code;
        }
        if (this._sessionEnded || code === CLOSE_CODES.SESSION_ENDED) {
            this._stopRenewing(); // a relay from before session_waiting ends its viewers so
            this._setState(STATES.ENDED);
            return;
        }
        // The app closes after refusing an input: nothing to resend, and the input error says why.
        if (code === CLOSE_CODES.NORMAL_CLOSURE || code === CLOSE_CODES.IDLE_TIMEOUT || this._inputRejected) {
            this._stopRenewing(); // an idle client fetches no tickets; connect() gets one when needed
            this._setState(STATES.IDLE); // the next send() reconnects
            if (this.viewer) { // a viewer has no input to reopen the connection with
                this._retryTimer = setTimeout(() => this.connect(), VIEWER_RESUME_MS);
            }
            return;
        }
        if (code === CLOSE_CODES.TICKET_EXPIRED) {
            this.ticket = "";
        }
        const fatal = FATAL_CLOSE_CODES.has(code) || (code === CLOSE_CODES.TICKET_EXPIRED && !this.getTicket);
        if (fatal || this._attempts >= this.reconnectOptions.maxAttempts) {
            this._stopRenewing();
            if (this.lastError) {
                this._setState(STATES.ERROR); // its x-fal-error was emitted when it arrived
            } else {
                this._fail(new RealtimeError(ERROR_CODES.INTERNAL_ERROR, event.reason || "connection lost", code));
            }
            return;
        }
        this._attempts += 1;
        const { initialDelayMs, maxDelayMs } = this.reconnectOptions;
        const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** (this._attempts - 1)) * (0.75 + Math.random() / 2);
        this._noteRetry(code, delay);
        this._setState(STATES.RECONNECTING);
        this._retryTimer = setTimeout(() => this.connect(), delay);
    }

    /** Why the client reconnects, which attempt of this run of failures, and when it tries next. */
    _noteRetry(code, delayMs) {
        const now = Date.now();
        // An x-fal-error comes on a socket that opened: one that never did (the relay is down) is not
        // explained by an earlier socket's error.
        const error = this._opened ? this.lastError : null;
        let cause = RETRY_CAUSES.LOST;
        if (error) {
            cause = RETRY_CAUSES.REFUSED;
        } else if (!this._opened) {
            cause = RETRY_CAUSES.UNREACHABLE;
        } else if (code === CLOSE_CODES.SERVICE_RESTART) {
            cause = RETRY_CAUSES.RESTARTING;
        }
        const reason = error ? `${error.code}: ${error.reason || "no reason given"}` : RETRY_WORDS[cause];
        // A socket that opened and then failed at once (a refused upstream) continues the run.
        const fresh = !this._failures || (this._opened && now - this._openedAt > QUIET_RECONNECT_MS);
        this._failures = fresh
            ? { attempt: 1, since: now } : { ...this._failures, attempt: this._failures.attempt + 1 };
        this.retry = { ...this._failures, at: now + delayMs, cause, reason, error };
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

    _setInputError(problem) {
        if (!problem && !this.inputError) {
            return;
        }
        this.inputError = problem && Object.assign(new RealtimeError(INVALID_INPUT, problem.message), {
            field: problem.field, fromApp: Boolean(problem.fromApp), value: problem.value,
        });
        this._emit("inputerror", this.inputError);
    }

    /** The rate of the frames in the stats window, kept for when frames stop (an idle HUD shows it). */
    _measureRate() {
        const times = this._frameTimes;
        if (times.length >= 3) {
            this._lastRate = ((times.length - 1) * 1000) / (times.at(-1) - times[0]);
        }
    }

    _fail(error) {
        this._stopRenewing();
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
