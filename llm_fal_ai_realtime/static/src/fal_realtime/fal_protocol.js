/**
 * What the relay and fal's apps say besides output frames, read in one place: the close codes and
 * x-fal-error codes (mirrors of `realtime_server.protocol`), the client's own error codes,
 * `RealtimeError`, and the readers of a control frame (`readControl`) and of the `CODE: reason` a
 * close carries (`readCloseReason`). Every socket the client opens (the connection and a handover
 * socket alike) reads them with these, so no two sockets disagree about what a frame means.
 *
 * The browser client (`fal_realtime.js`) re-exports what is public here.
 *
 * @module fal_protocol
 */
import { readValidationError } from "./fal_inputs.js";

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
 * What a text frame from the relay or the app says.
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

const CLOSE_REASON = /^([A-Z][A-Z_]*): (.*)$/s;

/**
 * The error a close's reason names, `{code, reason}`, or null. The relay ends a connection this way
 * inside an upstream message part-way out, where no x-fal-error frame may go.
 *
 * @param {string} [reason] the close event's `reason`
 */
export function readCloseReason(reason) {
    const said = CLOSE_REASON.exec(reason || "");
    return said ? { code: said[1], reason: said[2] } : null;
}
