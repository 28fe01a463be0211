/**
 * What the client measures of its frames: the rate (frames per second in a two-second window, and
 * the rate of the last run of frames for when they stop) and the input-to-frame latency percentiles.
 *
 * @module fal_stats
 */

const WINDOW_MS = 2000;
const LATENCY_SAMPLES = 120;
const STALL_MS = 1500; // an input unanswered this long is a stall, not a render

function percentile(sorted, p) {
    if (!sorted.length) {
        return 0;
    }
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The frames of one client, as its `stats` reports them. */
export class FrameStats {
    constructor() {
        this._times = []; // when frames came (performance.now()), within the last window
        this._latencies = []; // the last LATENCY_SAMPLES input-to-frame latencies, ms
        this._lastRate = 0; // frames per second of the last run of frames
    }

    /** A frame came at `at` (performance.now()), `latencyMs` after the input it answers (null: none). */
    record(at, latencyMs) {
        if (latencyMs !== null) {
            this._latencies.push(latencyMs);
            if (this._latencies.length > LATENCY_SAMPLES) {
                this._latencies.shift();
            }
        }
        const times = this._times;
        times.push(at);
        while (at - times[0] > WINDOW_MS) { // a client nobody reads must not keep every frame it ever had
            times.shift();
        }
        if (times.length >= 3) { // the rate of the last run, kept for when frames stop: an idle HUD shows it
            this._lastRate = ((times.length - 1) * 1000) / (times.at(-1) - times[0]);
        }
    }

    /**
     * `{fps, lastFps, p50, p95, activity, waitedMs}`: `activity` is `live` (frames coming or an input just
     * sent), `idle` or `stalled` (the oldest input in flight unanswered for over 1.5 s).
     *
     * @param {number} waitedMs how long the oldest input in flight has waited (0: none)
     * @param {boolean} asking an input is in flight or waiting to be sent
     */
    read(waitedMs, asking) {
        const now = performance.now();
        this._times = this._times.filter((t) => now - t <= WINDOW_MS);
        const sorted = [...this._latencies].sort((a, b) => a - b);
        let activity = "idle";
        if (waitedMs > STALL_MS) {
            activity = "stalled";
        } else if (asking || this._times.length) {
            activity = "live";
        }
        return {
            fps: (this._times.length * 1000) / WINDOW_MS,
            lastFps: this._lastRate,
            p50: percentile(sorted, 50),
            p95: percentile(sorted, 95),
            activity,
            waitedMs,
        };
    }
}
