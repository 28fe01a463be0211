/** @odoo-module **/
/**
 * One canvas's connection to the relay: the ticket Odoo hands out, the browser client built from it
 * (which renews its ticket, reconnects and says its state by itself), a fresh client to try again or
 * to watch again after a live session ended, and letting go of it. It holds no view and knows no OWL:
 * the canvas listens to each new client in `onClient`, and hears in `onFailure` when there is none.
 */
import { NO_TICKET } from "./status_words.js";

// The client `ended` (an older relay ended a viewer's connection when the driver left): a normal end
// in Odoo, so the canvas watches again shortly with a fresh client.
const SESSION_RESUME_MS = 1000;

export class LiveConnection {
    /**
     * @param {object} options
     * @param {() => Promise<object>} options.getTicket `{url, ticket, app, role, expires_in}`; a rejection
     *     is Odoo's refusal, its message the reason shown
     * @param {(options: object) => object} options.createClient builds the browser client (or a promise of it)
     * @param {() => number} options.throttleMs least milliseconds between two inputs sent
     * @param {(ticket: object, client: object) => void} options.onClient a new client and its first ticket,
     *     before it connects
     * @param {(code: string, reason: string) => void} options.onFailure no client: Odoo refused the ticket,
     *     or the client did not load
     */
    constructor({ getTicket, createClient, throttleMs, onClient, onFailure }) {
        Object.assign(this, { getTicket, createClient, throttleMs, onClient, onFailure });
        this.client = null;
        this.firstTicket = null; // fetched to build the client; its first renewal takes it
        this.resumeTimer = null;
        this.closed = false;
    }

    /**
     * Fetch a ticket and build a client on it.
     * @param {{takeover?: boolean}} [options] take the seat over from this user's other tab
     */
    async open({ takeover = false } = {}) {
        let first;
        try {
            first = await this.getTicket();
        } catch (error) {
            this.onFailure(NO_TICKET, error?.message || String(error));
            return;
        }
        if (this.closed) {
            return;
        }
        this.firstTicket = first;
        let client;
        try {
            const query = takeover ? `${first.url.includes("?") ? "&" : "?"}takeover=1` : "";
            client = await this.createClient({
                url: first.url + query,
                ticket: first.ticket,
                getTicket: () => this.nextTicket(),
                throttleMs: this.throttleMs(),
            });
        } catch (error) {
            this.onFailure("INTERNAL_ERROR", `the live preview client could not be loaded (${error?.message || error})`);
            return;
        }
        if (this.closed) {
            client.close();
            return;
        }
        this.client = client;
        this.onClient(first, client);
    }

    /** The first renewal reuses the ticket fetched to open; later ones ask Odoo again. */
    async nextTicket() {
        if (this.firstTicket) {
            const ticket = this.firstTicket;
            this.firstTicket = null;
            return ticket;
        }
        return this.getTicket();
    }

    /** @param {() => void} reopen what to do shortly, unless the connection is let go meanwhile */
    resumeSoon(reopen) {
        clearTimeout(this.resumeTimer);
        this.resumeTimer = setTimeout(() => !this.closed && reopen(), SESSION_RESUME_MS);
    }

    /** Let go of the client: its last states ("closed") are no longer the canvas's. */
    drop() {
        clearTimeout(this.resumeTimer);
        const client = this.client;
        this.client = null;
        client?.close();
    }

    /** Close for good (the canvas goes away). */
    close() {
        this.closed = true;
        this.drop();
    }
}
