/**
 * The handover at a ticket renewal: a socket opened with the renewed ticket beside the connection's,
 * which takes over before the relay ends the old ticket's socket (TICKET_EXPIRED), so the user never
 * notices. The newest input is sent on it again (a live session's driver takes its own seat over),
 * and it replaces the old socket at its first frame or message (after a quiet second when there is
 * nothing to send), or when the relay ends the old one first. A handover refused (an x-fal-error
 * that is not the app refusing the input) or closed before that is dropped: the old socket carries
 * on until it expires, and sends the input that went on the handover only.
 *
 * @module fal_handover
 */
import { CLOSE_CODES, readControl } from "./fal_protocol.js";
import { encode } from "./vendor/msgpack/index.js";

const QUIET_MS = 1000; // a handover with no input to send is adopted after this long without a refusal

/**
 * @typedef {object} HandoverHost  the client a handover belongs to
 * @property {() => Handover|null} handover  the client's handover now
 * @property {() => WebSocket|null} socket  the client's connection now
 * @property {(ws: WebSocket) => void} adopt  make `ws` the connection, this handover over
 * @property {() => void} forget  this handover is over, failed
 * @property {(data: string|ArrayBuffer) => void} receive  what came first on the adopted socket
 */

/** A socket with the renewed ticket, on its way to becoming the connection. */
export class Handover {
    /**
     * @param {WebSocket} ws a socket opened with the renewed ticket
     * @param {WebSocket} old the connection's socket it is to replace
     * @param {Outbox} outbox the client's inputs (`fal_outbox.js`)
     * @param {HandoverHost} host
     */
    constructor(ws, old, outbox, host) {
        this._ws = ws;
        this._old = old;
        this._outbox = outbox;
        this._host = host;
        this._input = outbox.newest;
        this._unsent = false; // the input went on this socket only: lost if it fails
        this._sent = []; // the input sent on this socket, in flight once it is adopted
        this._quiet = null;
        ws.onopen = () => this._onOpen();
        ws.onmessage = (event) => this._onMessage(event.data);
        ws.onclose = () => this._drop();
    }

    /** The new socket is open (so it can take over when the relay ends the old one). */
    get open() {
        return this._ws.readyState === WebSocket.OPEN;
    }

    /** Make the new socket the connection; false, and the new socket closed, when the client moved on. */
    adopt() {
        clearTimeout(this._quiet);
        if (this._host.handover() !== this || this._host.socket() !== this._old) {
            this._ws.close(CLOSE_CODES.NORMAL_CLOSURE);
            return false;
        }
        this._old.onmessage = null;
        this._old.onclose = null;
        this._old.close(CLOSE_CODES.NORMAL_CLOSURE);
        this._host.adopt(this._ws);
        this._outbox.handedOver(this._sent, this._input);
        return true;
    }

    /** Give up the new socket (the client closes). */
    close() {
        clearTimeout(this._quiet);
        this._ws.close(CLOSE_CODES.NORMAL_CLOSURE);
    }

    _onOpen() {
        if (this._input === null) {
            this._quiet = setTimeout(() => this.adopt(), QUIET_MS);
            return;
        }
        this._ws.send(encode(this._input));
        this._unsent = this._outbox.resentOnHandover(this._input);
        this._sent = [{ at: performance.now(), input: this._input }];
    }

    _onMessage(data) {
        const control = typeof data === "string" ? readControl(data) : null;
        if (control?.kind === "error" && !control.rejected) { // the app refusing the input is no refusal
            this._drop();
            this._ws.onclose = null;
            this._ws.close(CLOSE_CODES.NORMAL_CLOSURE);
            return;
        }
        if (this.adopt()) {
            this._host.receive(data);
        }
    }

    /** Refused or gone before it was adopted: the old socket stays, and sends the input this one took. */
    _drop() {
        clearTimeout(this._quiet);
        if (this._host.handover() !== this) {
            return;
        }
        this._host.forget();
        if (this._unsent && this._host.socket() === this._old) {
            this._outbox.giveBack(this._input);
        }
    }
}
