/**
 * Ticket renewal: fetch a ticket, and fetch the next one before this one runs out, so a reconnect
 * never waits for a ticket round trip and an open connection can move to the new ticket (the
 * handover) before the relay ends it with the old one.
 *
 * @module fal_renewal
 */

const RENEW_AT = 0.8; // of the lifetime
const RETRY_MS = 5000; // first retry of a refused renewal (at most a tenth of the lifetime)
const RETRY_MAX_MS = 60000;
const EXPIRY_MARGIN_MS = 5000; // a ticket this close to its end is not worth connecting with
const DEFAULT_LIFETIME_MS = 300 * 1000;

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
    return DEFAULT_LIFETIME_MS;
}

/** Fetches tickets for one client, each before the last runs out, until stopped. */
export class TicketRenewal {
    /**
     * @param {() => Promise<{ticket: string, url?: string, expires_in?: number}>} fetchTicket the ticket source
     * @param {(answer: {ticket: string, url?: string, expires_in?: number}) => void} onTicket given each
     *        ticket fetched while the renewal was not stopped
     */
    constructor(fetchTicket, onTicket) {
        this._fetchTicket = fetchTicket;
        this._onTicket = onTicket;
        this._expiresAt = 0;
        this._timer = null;
        this._generation = 0; // bumped by stop(), so a request still in flight is forgotten
    }

    /** The last ticket is gone or about to go: connect with a new one. */
    get expiring() {
        return Date.now() > this._expiresAt - EXPIRY_MARGIN_MS;
    }

    /** Fetch a ticket now (it rejects when the source does), then schedule the next one. */
    async renew() {
        const generation = this._generation;
        const answer = await this._fetchTicket();
        if (generation !== this._generation) {
            return; // stopped meanwhile (closed, failed or gone idle): no ticket, no next renewal
        }
        const lifetime = ticketLifetimeMs(answer.ticket, answer.expires_in);
        this._expiresAt = Date.now() + lifetime;
        // A refused renewal is tried again soon, then less and less often (the open connection does not need it).
        this._schedule(lifetime * RENEW_AT, Math.min(RETRY_MS, lifetime * 0.1));
        this._onTicket(answer);
    }

    /** No more renewals until the next `renew()`: an idle or closed client fetches no tickets. */
    stop() {
        this._generation += 1;
        clearTimeout(this._timer);
    }

    _schedule(delayMs, retryMs) {
        clearTimeout(this._timer);
        const generation = this._generation;
        this._timer = setTimeout(() => this.renew().catch(() => {
            if (generation === this._generation) {
                this._schedule(retryMs, Math.min(RETRY_MAX_MS, retryMs * 2));
            }
        }), delayMs);
    }
}
