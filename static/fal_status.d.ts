/** The browser client's connection states and the one mapping from a client's status to words. */
import type { RealtimeError, RetryCause } from "./fal_realtime.js";

/** Connection states, in the order a healthy connection goes through them. */
export declare const STATES: Readonly<{
    IDLE: "idle";
    CONNECTING: "connecting";
    OPEN: "open";
    WAITING: "waiting";
    RECONNECTING: "reconnecting";
    ENDED: "ended";
    CLOSED: "closed";
    ERROR: "error";
}>;
/** One of STATES' values. */
export type State = (typeof STATES)[keyof typeof STATES];

/** How long a reconnect goes unexplained (ms). */
export declare const QUIET_RECONNECT_MS: number;
/** What each state is called, in English. */
export declare const STATUS_WORDS: Readonly<Record<State, string>>;

/** Tones a UI styles the words by. */
export declare const TONES: Readonly<{ OK: "ok"; WAIT: "wait"; WARN: "warn"; ERROR: "error"; END: "end" }>;
export type Tone = (typeof TONES)[keyof typeof TONES];

/** Why a reconnect happens (`retry.cause`). */
export declare const RETRY_CAUSES: Readonly<{
    UNREACHABLE: "unreachable";
    LOST: "lost";
    RESTARTING: "restarting";
    REFUSED: "refused";
}>;
export declare const RETRY_WORDS: Readonly<Record<"unreachable" | "lost" | "restarting", string>>;

/** While reconnecting: which attempt, since and until when (ms since the epoch), and why. */
export interface Retry {
    attempt: number;
    since: number;
    at: number;
    cause: RetryCause;
    reason: string;
    error: RealtimeError | null;
}

/** What `client.status` returns: the input of `statusKey` and `describeStatus`. */
export interface Status {
    state: State;
    retry?: Retry | null;
    error?: RealtimeError | null;
    inputError?: InputProblemError | null;
    waitingReason?: string;
}

/** An input refused before sending, or rejected by the app: a `RealtimeError` with code INVALID_INPUT. */
export interface InputProblemError extends RealtimeError {
    field: string;
    fromApp: boolean;
    value: unknown;
}

/** The keys `statusKey` returns: a state, or one of the detailed sentences. */
export type StatusKey =
    | State
    | "viewer_open"
    | "viewer_idle"
    | "error_detail"
    | "retry_next"
    | "retry_now"
    | "waiting_reason"
    | "input_error";

export interface StatusOptions {
    viewer?: boolean;
    /** As `Date.now()`. */
    now?: number;
}

export interface StatusSentence {
    key: StatusKey;
    params: Record<string, string | number>;
    tone: Tone;
}

/** Which sentence applies to a status, without the words (for a UI with its own translations). */
export declare function statusKey(status: Status, options?: StatusOptions): StatusSentence;
/** A status in English words, with the key and params it came from. */
export declare function describeStatus(status: Status, options?: StatusOptions): StatusSentence & { text: string };
