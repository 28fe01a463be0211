/**
 * What `<fal-live-canvas>` shows, in its shadow DOM: the picture, a status bar under it (the
 * words, a **Watch only** badge, the HUD) and the size the picture takes. The element
 * (`fal_live_canvas.js`) decides what to show; this module only draws it.
 *
 * @module fal_live_canvas_view
 */
import { TONES } from "./fal_status.js";

/** Ways a frame fills the element's box (CSS `object-fit`). */
export const FITS = Object.freeze(["contain", "cover", "fill", "none", "scale-down"]);

const DEFAULT_SIZE = 512;
const JPEG_QUALITY = 0.92;

const TEMPLATE = document.createElement("template");
TEMPLATE.innerHTML = `<style>
:host { display: inline-flex; flex-direction: column; vertical-align: top; max-width: 100%; overflow: hidden;
        contain: content; border-radius: 8px; background: #202124; color: #e8eaed;
        font: 13px/1.4 system-ui, sans-serif; }
:host([hidden]) { display: none; }
canvas { display: block; width: 100%; height: auto; min-height: 0; flex: 1 1 auto; }
.bar { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.2em 0.6em; padding: 4px 8px; background: #2b2c30; }
.bar[data-tone="warn"] { background: #4d3d12; color: #fde293; }
.bar[data-tone="error"] { background: #5c2b29; color: #fad2cf; }
.badge { padding: 0 6px; border-radius: 4px; background: #174ea6; color: #d2e3fc; font-weight: 600; font-size: 12px; }
.badge[hidden], .hud[hidden] { display: none; }
.status { flex: 1 1 12em; margin: 0; min-width: 0; }
.hud { display: flex; gap: 0.6em; margin-left: auto; color: #bdc1c6; font: 12px ui-monospace, monospace;
       white-space: nowrap; }
.hud [data-activity="stalled"] { color: #f28b82; }
</style>
<canvas part="canvas" role="img" aria-label="Live preview"></canvas>
<div class="bar" part="bar">
  <span class="badge" part="badge" id="badge" hidden
        title="This page watches a live session; only its driver changes the picture">Watch only</span>
  <p class="status" part="status" id="status" role="status" aria-live="polite"></p>
  <span class="hud" part="hud" aria-hidden="true" hidden><b id="activity">idle</b><span>fps <b id="fps">0.0</b></span
    ><span>p50 <b id="p50">–</b> ms</span><span>p95 <b id="p95">–</b> ms</span></span>
</div>`;

/** The shadow DOM of one element: picture, status bar, HUD and size. */
export class LiveCanvasView {
    /** @param {ShadowRoot} root the element's (empty) shadow root */
    constructor(root) {
        root.append(TEMPLATE.content.cloneNode(true));
        this._sizeSheet = new CSSStyleSheet();
        root.adoptedStyleSheets = [this._sizeSheet];
        this._canvas = root.querySelector("canvas");
        this._context = this._canvas.getContext("2d");
        this._hud = root.querySelector(".hud");
        this._bar = root.querySelector(".bar");
        this._badge = root.getElementById("badge");
        this._status = root.getElementById("status");
        this._drawn = false;
        this.words = { text: "", tone: TONES.WAIT };
    }

    /** Draw a frame at its own size (the CSS size keeps the box). */
    draw(bitmap) {
        if (this._canvas.width !== bitmap.width || this._canvas.height !== bitmap.height) {
            this._canvas.width = bitmap.width;
            this._canvas.height = bitmap.height;
        }
        this._context.drawImage(bitmap, 0, 0);
        this._drawn = true;
    }

    /** The picture as drawn, re-encoded as a JPEG. */
    toJpeg() {
        return new Promise((resolve, reject) => {
            this._canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("could not encode the frame"))),
                "image/jpeg", JPEG_QUALITY);
        });
    }

    /**
     * Say `words` ({text, tone}) in the status line; false when they are what it already says.
     * A countdown ("next try in 3 s") changes only numbers: screen readers hear it once, not each second.
     */
    say(words, state) {
        if (words.text === this.words.text && words.tone === this.words.tone) {
            return false;
        }
        const counting = words.text.replace(/\d+/g, "#") === this.words.text.replace(/\d+/g, "#");
        this._status.setAttribute("aria-live", counting ? "off" : "polite");
        this.words = words;
        this._bar.dataset.tone = words.tone;
        this._status.dataset.state = state;
        this._status.textContent = words.text;
        return true;
    }

    set watchOnly(value) {
        this._badge.hidden = !value;
    }

    set label(value) {
        this._canvas.setAttribute("aria-label", value || "Live preview");
    }

    get hudShown() {
        return !this._hud.hidden;
    }

    set hudShown(value) {
        this._hud.hidden = !value;
    }

    /** The HUD's figures from the client's `stats`; idle shows the rate frames last came at, not a zero. */
    showStats({ fps, lastFps, p50, p95, activity, waitedMs }) {
        if (this._hud.hidden) {
            return;
        }
        const ms = (value) => (value ? value.toFixed(1) : "–");
        const shown = this._hud.querySelector("#activity");
        shown.textContent = activity === "stalled" ? `stalled ${(waitedMs / 1000).toFixed(1)} s` : activity;
        shown.dataset.activity = activity;
        const rate = activity === "live" && fps ? fps : lastFps; // no rate yet from one or two frames
        this._hud.querySelector("#fps").textContent = rate ? rate.toFixed(1) : "–";
        this._hud.querySelector("#p50").textContent = ms(p50);
        this._hud.querySelector("#p95").textContent = ms(p95);
    }

    /** The picture's CSS size (attributes `width`, `height`, `fit`); CSS on the element wins, the ratio stays. */
    resize(width, height, fit) {
        [width, height] = [Number.parseFloat(width) || DEFAULT_SIZE, Number.parseFloat(height) || DEFAULT_SIZE];
        fit = FITS.includes(fit) ? fit : "contain";
        if (!this._drawn) {
            [this._canvas.width, this._canvas.height] = [width, height];
        }
        this._sizeSheet.replaceSync(
            `:host { width: ${width}px; } canvas { aspect-ratio: ${width} / ${height}; object-fit: ${fit}; }`);
    }
}
