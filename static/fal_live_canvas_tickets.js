/**
 * Where `<fal-live-canvas>` connects and how it asks for tickets: the app's URL on the relay, the
 * request its ticket source gets, and the `ticket-url` POST (an Odoo JSON route's answer included).
 *
 * @module fal_live_canvas_tickets
 */

// The relay this module was loaded from: the default for the `relay` attribute.
const MODULE_ORIGIN = new URL(import.meta.url).origin;

/** POST the ticket request to the page's own endpoint, with its cookies; `{url, ticket, expires_in, role?}`. */
export async function fetchTicket(url, request) {
    const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(request),
    });
    if (!response.ok) {
        throw new Error(`${url} answered ${response.status}`);
    }
    const body = await response.json();
    return body.result ?? body; // an Odoo type="json" route wraps its answer in JSON-RPC's `result`
}

/** `{app, session?, role?}`: a live session's driver or viewer says which it wants to be. */
export function ticketRequest({ app, session, viewer }) {
    if (!viewer && !session) {
        return { app: app || undefined };
    }
    return { app: app || undefined, session: session || undefined, role: viewer ? "viewer" : "driver" };
}

/** The app's WebSocket URL on `relay` (http(s) or ws(s); default: where this module came from), or "". */
export function appUrl(relay, app) {
    if (!app) {
        return "";
    }
    const base = new URL(relay || MODULE_ORIGIN, location.href);
    const scheme = base.protocol === "https:" || base.protocol === "wss:" ? "wss:" : "ws:";
    return `${scheme}//${base.host}${base.pathname.replace(/\/+$/, "")}/${app}/realtime`;
}

/** `url` with `?session=`, on which load balancers route a live session's viewers to its driver's replica. */
export function withSession(url, session) {
    if (!session || new URL(url).searchParams.has("session")) {
        return url;
    }
    return `${url}${url.includes("?") ? "&" : "?"}session=${encodeURIComponent(session)}`;
}
