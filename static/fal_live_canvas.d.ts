/** `<fal-live-canvas>`: a live fal preview on any web page, as a standard custom element. */
import type { InputLimit } from "./fal_inputs.js";
import type { FalImage, RealtimeError, RealtimeInput, RealtimeResult, RealtimeStats, TicketAnswer } from "./fal_realtime.js";
import type { State, Tone } from "./fal_status.js";

export declare const TAG_NAME: "fal-live-canvas";

/** The element's `state` is the client's (README, "Connection states"). */
export { STATES } from "./fal_realtime.js";

/** Ways a frame fills the element's box (CSS `object-fit`). */
export declare const FITS: readonly ["contain", "cover", "fill", "none", "scale-down"];
export type Fit = (typeof FITS)[number];

/** What the element asks its ticket source for. */
export interface TicketRequest {
    app?: string;
    session?: string;
    role?: "driver" | "viewer";
}

export interface LiveFrameDetail {
    bitmap: ImageBitmap | null;
    bytes: Uint8Array | null;
    contentType: string | null;
    result: RealtimeResult;
    latencyMs: number | null;
    timings: Record<string, number> | null;
    input: RealtimeInput | null;
}

// The element's own events; its `error` is the relay's, not a script error's ErrorEvent.
export interface FalLiveCanvasEventMap extends Omit<HTMLElementEventMap, "error"> {
    statechange: CustomEvent<{ state: State; previous: State | "" }>;
    status: CustomEvent<{ text: string; tone: Tone; state: State | "" }>;
    inputerror: CustomEvent<{ field: string; message: string } | null>;
    frame: CustomEvent<LiveFrameDetail>;
    error: CustomEvent<{ code: string; reason: string; error: RealtimeError }>;
}

/** The element's HTML attributes, for templates and JSX (all strings, as HTML has them). */
export interface FalLiveCanvasAttributes {
    relay?: string;
    app?: string;
    ticket?: string;
    "ticket-url"?: string;
    mode?: "driver" | "viewer";
    session?: string;
    prompt?: string;
    seed?: string | number;
    strength?: string | number;
    steps?: string | number;
    width?: string | number;
    height?: string | number;
    fit?: Fit;
    hud?: boolean | "";
    label?: string;
}

/** A live preview of one fal realtime app, drawn as frames arrive. */
export declare class FalLiveCanvas extends HTMLElement {
    static readonly observedAttributes: string[];
    relay: string;
    app: string;
    ticket: string;
    ticketUrl: string;
    mode: string;
    session: string;
    prompt: string | undefined;
    seed: number | undefined;
    strength: number | undefined;
    steps: number | undefined;
    /** Wins over `ticket-url` and `ticket`. */
    getTicket: ((request: TicketRequest) => Promise<TicketAnswer>) | null;
    /** Input ranges over INPUT_LIMITS, by wire field. */
    limits: Record<string, InputLimit>;
    /** The input sent on each change (wire fields). */
    readonly input: RealtimeInput;
    /** One of STATES, or "" before the element first connects; reflected as the `state` attribute. */
    readonly state: State | "";
    /** What the status line says. */
    readonly status: { text: string; tone: Tone };
    readonly inputError: { field: string; message: string } | null;
    readonly stats: RealtimeStats;
    /** True for `mode="viewer"` or a viewer ticket. */
    readonly viewer: boolean;
    /** Merge wire fields into the input and send it; `null`/`undefined` removes a field. */
    setInput(fields: Record<string, unknown>): void;
    /** The current frame as a JPEG. */
    keep(): Promise<Blob>;
    /** Connect again with a fresh ticket. */
    reconnect(): void;

    addEventListener<K extends keyof FalLiveCanvasEventMap>(
        type: K,
        listener: (this: FalLiveCanvas, event: FalLiveCanvasEventMap[K]) => unknown,
        options?: boolean | AddEventListenerOptions,
    ): void;
    addEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject,
        options?: boolean | AddEventListenerOptions,
    ): void;
    removeEventListener<K extends keyof FalLiveCanvasEventMap>(
        type: K,
        listener: (this: FalLiveCanvas, event: FalLiveCanvasEventMap[K]) => unknown,
        options?: boolean | EventListenerOptions,
    ): void;
    removeEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject,
        options?: boolean | EventListenerOptions,
    ): void;
}

export type { FalImage };

declare global {
    interface HTMLElementTagNameMap {
        "fal-live-canvas": FalLiveCanvas;
    }
}
