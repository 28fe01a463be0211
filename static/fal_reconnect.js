/**
 * What a closed connection leads to: the state it leaves the client in (the close transitions of
 * README's "Connection states", in one place), how long to wait before the next try (exponential
 * backoff with jitter), and the `retry` a UI explains it with (why, which attempt of this run of
 * failures, when the next try is).
 *
 * @module fal_reconnect
 */
import { CLOSE_CODES } from "./fal_protocol.js";
import { QUIET_RECONNECT_MS, RETRY_CAUSES, RETRY_WORDS, STATES } from "./fal_status.js";

/** Backoff of a client that does not set `reconnect`. */
export const RECONNECT_DEFAULTS = Object.freeze({ initialDelayMs: 400, maxDelayMs: 8000, maxAttempts: Infinity });

// Close codes after which trying again cannot help: the request itself is refused.
const FATAL_CLOSE_CODES = new Set([
    CLOSE_CODES.UNSUPPORTED_DATA,
    CLOSE_CODES.INVALID_DATA,
    CLOSE_CODES.POLICY_VIOLATION,
    CLOSE_CODES.MESSAGE_TOO_BIG,
]);

/**
 * The state a close with `code` leaves the client in: `ended` (the live session ended), `idle` (the
 * next send() reconnects), `error` (for good) or `reconnecting`.
 *
 * @param {number} code the close code
 * @param {object} connection  `sessionEnded`: the relay said session_ended; `inputRejected`: the app
 *        refused an input on this socket; `canRenewTicket`: a `getTicket` is given; `attempts` made
 *        since the last open, of `maxAttempts`
 */
export function stateAfterClose(code, { sessionEnded, inputRejected, canRenewTicket, attempts, maxAttempts }) {
    if (sessionEnded || code === CLOSE_CODES.SESSION_ENDED) {
        return STATES.ENDED; // a relay from before session_waiting ends its viewers with 4004
    }
    // The app closes after refusing an input: nothing to resend, and the input error says why.
    if (code === CLOSE_CODES.NORMAL_CLOSURE || code === CLOSE_CODES.IDLE_TIMEOUT || inputRejected) {
        return STATES.IDLE;
    }
    const fatal = FATAL_CLOSE_CODES.has(code) || (code === CLOSE_CODES.TICKET_EXPIRED && !canRenewTicket);
    return fatal || attempts >= maxAttempts ? STATES.ERROR : STATES.RECONNECTING;
}

/** How long to wait before try number `attempt` (from 1): doubling up to `maxDelayMs`, ±25 % jitter. */
export function retryDelayMs(attempt, { initialDelayMs, maxDelayMs }) {
    return Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2);
}

/**
 * Why the client reconnects, which attempt of this run of failures, and when it tries next.
 *
 * @param {{attempt: number, since: number}|null} run the current run of failed connections, if any
 * @param {object} close  `code` of the close; `delayMs` until the next try; whether the socket `opened`
 *        and when (`openedAt`, ms since the epoch); `error`, the RealtimeError it ended with, if any
 * @returns {{run: {attempt: number, since: number}, retry: object}} the run, continued or fresh, and
 *          the client's `retry`
 */
export function nextRetry(run, { code, delayMs, opened, openedAt, error }) {
    const now = Date.now();
    // An x-fal-error comes on a socket that opened: one that never did (the relay is down) is not
    // explained by an earlier socket's error.
    const refusal = opened ? error : null;
    let cause = RETRY_CAUSES.LOST;
    if (refusal) {
        cause = RETRY_CAUSES.REFUSED;
    } else if (!opened) {
        cause = RETRY_CAUSES.UNREACHABLE;
    } else if (code === CLOSE_CODES.SERVICE_RESTART) {
        cause = RETRY_CAUSES.RESTARTING;
    }
    const reason = refusal ? `${refusal.code}: ${refusal.reason || "no reason given"}` : RETRY_WORDS[cause];
    // A socket that opened and then failed at once (a refused upstream) continues the run.
    const fresh = !run || (opened && now - openedAt > QUIET_RECONNECT_MS);
    const next = fresh ? { attempt: 1, since: now } : { ...run, attempt: run.attempt + 1 };
    return { run: next, retry: { ...next, at: now + delayMs, cause, reason, error: refusal } };
}
