// The site's own backend mints tickets (POST /ticket): the relay's secret never reaches the browser.
import type { TicketAnswer } from "fal-realtime-browser";

export async function fetchTicket(request: { app?: string; session?: string; role?: "driver" | "viewer" }): Promise<TicketAnswer> {
    const response = await fetch("/ticket", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
    });
    if (!response.ok) {
        throw new Error(`/ticket answered ${response.status}`);
    }
    return (await response.json()) as TicketAnswer;
}
