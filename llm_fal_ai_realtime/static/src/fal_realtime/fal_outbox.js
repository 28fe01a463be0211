/**
 * The inputs on their way to the app: newest input wins (one unsent input is kept, never a backlog),
 * at most `maxInFlight` unanswered and one per `throttleMs`, and the inputs in flight that frames
 * answer, oldest first.
 *
 * @module fal_outbox
 */
import { encode } from "./vendor/msgpack/index.js";

const UNANSWERED_MS = 3000; // an input in flight this long was dropped upstream (its own newest-wins)

/** One client's inputs: the one waiting to be sent, and those sent but not yet answered. */
export class Outbox {
    /**
     * @param {() => WebSocket|null} socket the connection's socket, whichever it is when sending
     * @param {{throttleMs: number, maxInFlight: number}} pace read at each send (the client's options)
     */
    constructor(socket, pace) {
        this._socket = socket;
        this._pace = pace;
        this.pending = null; // the newest input not sent yet
        this.inFlight = []; // {at, input} sent and not answered yet, oldest first
        this.lastSent = null; // the newest input sent, sent again on a handover
        this._lastSendAt = -Infinity; // the first input goes at once, however soon after the page loaded
        this._timer = null;
    }

    /** The input a new socket starts from: the pending one, else the last sent. */
    get newest() {
        return this.pending ?? this.lastSent;
    }

    /** An input is in flight or waiting to be sent. */
    get asking() {
        return this.inFlight.length > 0 || this.pending !== null;
    }

    /** How long the oldest input in flight has waited, ms (0: none). */
    get waitedMs() {
        return this.inFlight.length ? performance.now() - this.inFlight[0].at : 0;
    }

    /** Forget the input waiting to be sent. */
    discard() {
        this.pending = null;
        clearTimeout(this._timer);
    }

    /** No send from the throttle's timer (the client closed). */
    stop() {
        clearTimeout(this._timer);
    }

    /** The oldest input in flight, which a frame just answered (undefined: none was waiting). */
    answered() {
        return this.inFlight.shift();
    }

    /** The socket closed: what was in flight will not be answered. */
    lost() {
        this.inFlight = [];
    }

    /** Send the pending input on the open socket, if the in-flight limit and the throttle allow. */
    flush() {
        const ws = this._socket();
        if (!ws || ws.readyState !== WebSocket.OPEN || this.pending === null) {
            return;
        }
        const now = performance.now();
        while (this.inFlight.length && now - this.inFlight[0].at > UNANSWERED_MS) {
            this.inFlight.shift(); // upstream dropped that input (its own newest-wins); stop waiting for it
        }
        if (this.inFlight.length >= this._pace.maxInFlight) {
            return;
        }
        const wait = this._pace.throttleMs - (now - this._lastSendAt);
        if (wait > 0) {
            clearTimeout(this._timer);
            this._timer = setTimeout(() => this.flush(), wait);
            return;
        }
        const input = this.pending;
        this.pending = null;
        ws.send(encode(input));
        this.lastSent = input;
        this._lastSendAt = now;
        this.inFlight.push({ at: now, input });
    }

    /** `input` went on a handover socket: true when it was still pending, i.e. went there only. */
    resentOnHandover(input) {
        this.lastSent = input;
        const pendingOnly = this.pending === input;
        if (pendingOnly) {
            this.pending = null;
        }
        return pendingOnly;
    }

    /** The handover socket that `input` went on (`sent`, as in flight there) is now the connection. */
    handedOver(sent, input) {
        this.inFlight = sent;
        if (this.lastSent !== input && this.pending === null) {
            this.pending = this.lastSent; // a newer input went out on the old socket meanwhile
        }
    }

    /** A handover failed with `input` sent on it only: send it on the connection instead. */
    giveBack(input) {
        if (this.pending === null) {
            this.pending = input;
            this.flush();
        }
    }
}
