/**
 * The browser client for the fal-realtime relay (and for fal's realtime wire protocol).
 *
 * ES modules, no framework: `RealtimeClient` opens the WebSocket with a short-lived ticket, sends
 * msgpack inputs with newest-input-wins throttling, decodes frames to `ImageBitmap`s, surfaces
 * `x-fal-error` frames as `RealtimeError`s, renews its ticket before expiry and reconnects with
 * backoff. The demo page, the `<fal-live-canvas>` widget and the Odoo `LiveCanvas` all use it.
 *
 * It also owns what a UI needs to say, so no UI re-reads errors: the connection's `state` (a live
 * session's viewer `waiting` for its driver, a session `ended`, ...), why and when it reconnects
 * (`retry`), an input it refused or the app rejected (`inputError`, from `INPUT_LIMITS` or the
 * app's own validation), whether frames flow, are idle or stall (`stats.activity`), and the words
 * for all of it (`describeStatus`, `client.describe()`).
 *
 * This module is the public entry; each job has its own module: the connection
 * (`fal_connection.js`), the inputs on their way (`fal_outbox.js`), what the relay says besides
 * frames (`fal_protocol.js`), ticket renewal (`fal_renewal.js`), the handover to a renewed ticket's
 * socket (`fal_handover.js`), reconnecting (`fal_reconnect.js`), the measurements (`fal_stats.js`),
 * input ranges (`fal_inputs.js`) and the states and their words (`fal_status.js`).
 *
 * @module fal_realtime
 */
export { RealtimeClient } from "./fal_connection.js";
export { checkInput, fieldName, INPUT_LIMITS, readValidationError } from "./fal_inputs.js";
export { CLOSE_CODES, ERROR_CODES, INVALID_INPUT, NO_TICKET, RealtimeError, readControl } from "./fal_protocol.js";
export { ticketLifetimeMs } from "./fal_renewal.js";
export { describeStatus, QUIET_RECONNECT_MS, STATES, STATUS_WORDS, statusKey, TONES } from "./fal_status.js";
