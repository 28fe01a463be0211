/**
 * The browser client for the fal-realtime relay (and for fal's realtime wire protocol): tickets,
 * newest-input-wins sending, `ImageBitmap` frames, typed errors, renewal and reconnects.
 */
import type { InputLimit, InputProblem } from "./fal_inputs.js";
import type { InputProblemError, Retry, State, Status, StatusOptions, StatusSentence } from "./fal_status.js";

export { checkInput, fieldName, INPUT_LIMITS, readValidationError } from "./fal_inputs.js";
export type { InputLimit, InputLimits, InputProblem } from "./fal_inputs.js";
export { describeStatus, QUIET_RECONNECT_MS, STATES, STATUS_WORDS, statusKey, TONES } from "./fal_status.js";
export type {
    InputProblemError, Retry, State, Status, StatusKey, StatusOptions, StatusSentence, Tone,
} from "./fal_status.js";

/** WebSocket close codes; mirrors the relay's `CloseCode`. */
export declare const CLOSE_CODES: Readonly<{
    NORMAL_CLOSURE: 1000;
    GOING_AWAY: 1001;
    PROTOCOL_ERROR: 1002;
    UNSUPPORTED_DATA: 1003;
    INVALID_DATA: 1007;
    POLICY_VIOLATION: 1008;
    MESSAGE_TOO_BIG: 1009;
    INTERNAL_ERROR: 1011;
    SERVICE_RESTART: 1012;
    TRY_AGAIN_LATER: 1013;
    BAD_GATEWAY: 1014;
    TICKET_EXPIRED: 4001;
    SESSION_EXPIRED: 4002;
    IDLE_TIMEOUT: 4003;
    SESSION_ENDED: 4004;
}>;
export type CloseCode = (typeof CLOSE_CODES)[keyof typeof CLOSE_CODES];

/** `error` values of x-fal-error frames; mirrors the relay's `ErrorCode`. */
export declare const ERROR_CODES: Readonly<{
    UNAUTHORIZED: "UNAUTHORIZED";
    TICKET_EXPIRED: "TICKET_EXPIRED";
    ORIGIN_NOT_ALLOWED: "ORIGIN_NOT_ALLOWED";
    APP_NOT_ALLOWED: "APP_NOT_ALLOWED";
    BAD_REQUEST: "BAD_REQUEST";
    BAD_FRAME: "BAD_FRAME";
    FRAME_TOO_LARGE: "FRAME_TOO_LARGE";
    RATE_LIMITED: "RATE_LIMITED";
    CLIENT_TOO_SLOW: "CLIENT_TOO_SLOW";
    TOO_MANY_CONNECTIONS: "TOO_MANY_CONNECTIONS";
    VIEWER_READ_ONLY: "VIEWER_READ_ONLY";
    SESSION_BUSY: "SESSION_BUSY";
    UPSTREAM_UNAVAILABLE: "UPSTREAM_UNAVAILABLE";
    UPSTREAM_ERROR: "UPSTREAM_ERROR";
    TIMEOUT: "TIMEOUT";
    SESSION_EXPIRED: "SESSION_EXPIRED";
    INTERNAL_ERROR: "INTERNAL_ERROR";
}>;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** `code` of the error when `getTicket` fails: the page's own backend refused, not the relay. */
export declare const NO_TICKET: "NO_TICKET";
/** `code` of `inputError`: an input out of range, refused before sending or rejected by the app. */
export declare const INVALID_INPUT: "INVALID_INPUT";

/** Why a reconnect happens (`retry.cause`). */
export type RetryCause = "unreachable" | "lost" | "restarting" | "refused";

/** An x-fal-error from the relay or upstream, or a connection lost for good. */
export declare class RealtimeError extends Error {
    /** One of ERROR_CODES, NO_TICKET, INVALID_INPUT, or an upstream's own code. */
    readonly code: ErrorCode | typeof NO_TICKET | typeof INVALID_INPUT | (string & {});
    /** What happened, in words a person can act on ("" when none was given). */
    readonly reason: string;
    /** The WebSocket close code that followed, once known. */
    readonly closeCode: number | undefined;
    constructor(code: string, reason?: string, closeCode?: number);
}

/** What a text frame from the relay or the app says (`readControl`). */
export interface ControlFrame {
    /** `error`: an x-fal-error; `message`: an x-fal-message; `other`: anything else. */
    kind: "error" | "message" | "other";
    /** The frame's JSON, or null when it is not JSON. */
    payload: { type?: string; error?: string; reason?: string; [field: string]: unknown } | null;
    /** Set on an x-fal-error that is the app refusing an input: the input is wrong, not the connection. */
    rejected: InputProblem | null;
}

/** Reads a text frame as the client does, for every socket it opens. */
export declare function readControl(text: string): ControlFrame;

/**
 * How long a ticket lives, in ms: `expiresIn` (s) when given, else the ticket's own `exp - iat`,
 * else `exp` against this clock, else 300 s.
 */
export declare function ticketLifetimeMs(ticket: string, expiresIn?: number): number;

/** What a ticket endpoint answers (the relay's `/dev/ticket`, Odoo's session route, your backend). */
export interface TicketAnswer {
    /** The ticket (an HS256 JWT the relay verifies). */
    ticket: string;
    /** The app's WebSocket URL, when the endpoint decides it. */
    url?: string;
    /** Seconds the ticket is valid for; renewal is scheduled before it runs out. */
    expires_in?: number;
    /** `viewer` when the ticket only watches a live session. */
    role?: "driver" | "viewer";
}

export interface ReconnectOptions {
    initialDelayMs?: number;
    maxDelayMs?: number;
    maxAttempts?: number;
}

export interface RealtimeClientOptions {
    /** The app's WebSocket URL, without ticket (or from `getTicket`). */
    url?: string;
    /** A ticket, if `getTicket` is not given. */
    ticket?: string;
    /** Fetches a fresh ticket; used at connect, before expiry and on reconnect. */
    getTicket?: () => Promise<TicketAnswer>;
    /** Least time between two inputs sent (ms, default 0). */
    throttleMs?: number;
    /** Inputs sent but not yet answered (default 1). */
    maxInFlight?: number;
    reconnect?: ReconnectOptions;
    /** Decode `images[0]` to an ImageBitmap (default true). */
    decodeImages?: boolean;
    /** Input ranges over INPUT_LIMITS, by wire field. */
    limits?: Record<string, InputLimit>;
    /** Watch a live session: never send; reopen an idle connection. */
    viewer?: boolean;
}

/** An input: wire fields such as `{prompt, seed, strength, num_inference_steps, image_bytes}`. */
export type RealtimeInput = Record<string, unknown>;

/** An image as fal's apps send it in `images`. */
export interface FalImage {
    content: Uint8Array;
    content_type?: string;
    width?: number;
    height?: number;
    [field: string]: unknown;
}

/** A decoded output frame (the msgpack map the app sent). */
export interface RealtimeResult {
    images?: FalImage[];
    timings?: Record<string, number>;
    seed?: number;
    [field: string]: unknown;
}

export interface FrameDetail {
    /** `images[0]` decoded, or null (no image, or `decodeImages: false`). */
    bitmap: ImageBitmap | null;
    image: FalImage | undefined;
    result: RealtimeResult;
    /** Input to frame, ms; null when no input was waiting (a viewer). */
    latencyMs: number | null;
    /** The input this frame answers; null when none was waiting. */
    input: RealtimeInput | null;
}

/** An x-fal-message: the relay's live-session news (`session_waiting`, `session_live`, ...). */
export interface FalMessage {
    type: "x-fal-message";
    action?: string;
    reason?: string;
    [field: string]: unknown;
}

export interface RealtimeStats {
    fps: number;
    lastFps: number;
    p50: number;
    p95: number;
    activity: "live" | "idle" | "stalled";
    waitedMs: number;
}

export interface RealtimeClientEventMap {
    statechange: CustomEvent<{ state: State }>;
    frame: CustomEvent<FrameDetail>;
    message: CustomEvent<FalMessage>;
    error: CustomEvent<RealtimeError>;
    inputerror: CustomEvent<InputProblemError | null>;
}

/** A realtime connection through the relay. */
export declare class RealtimeClient extends EventTarget {
    constructor(options?: RealtimeClientOptions);
    url: string;
    ticket: string;
    getTicket: (() => Promise<TicketAnswer>) | null;
    throttleMs: number;
    maxInFlight: number;
    decodeImages: boolean;
    limits: Record<string, InputLimit>;
    viewer: boolean;
    readonly state: State;
    readonly retry: Retry | null;
    readonly inputError: InputProblemError | null;
    readonly lastError: RealtimeError | null;
    readonly lastResult: RealtimeResult | null;
    readonly waitingReason: string;
    /** Frames per second, p50/p95 latency (ms) and whether frames flow. */
    readonly stats: RealtimeStats;
    /** What a UI shows: the input of `describeStatus`. */
    readonly status: Status;
    /** This client's status in words. */
    describe(options?: StatusOptions): StatusSentence & { text: string };
    /** Open the connection (fetching a ticket first when `getTicket` is given). */
    connect(): Promise<void>;
    /** Queue an input; only the newest unsent input is kept. */
    send(input: RealtimeInput): void;
    /** Forget the input waiting to be sent. */
    discardPending(): void;
    /** Close for good: no reconnect. */
    close(): void;

    addEventListener<K extends keyof RealtimeClientEventMap>(
        type: K,
        listener: (this: RealtimeClient, event: RealtimeClientEventMap[K]) => unknown,
        options?: boolean | AddEventListenerOptions,
    ): void;
    addEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | AddEventListenerOptions,
    ): void;
    removeEventListener<K extends keyof RealtimeClientEventMap>(
        type: K,
        listener: (this: RealtimeClient, event: RealtimeClientEventMap[K]) => unknown,
        options?: boolean | EventListenerOptions,
    ): void;
    removeEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | EventListenerOptions,
    ): void;
}
