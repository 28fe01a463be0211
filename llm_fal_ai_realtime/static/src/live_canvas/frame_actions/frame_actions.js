/** @odoo-module **/
/**
 * What the pen holder does with the picture: Keep posts the frame on the canvas (its bytes as
 * received, with the prompt and seed that rendered them); Render final asks the model's normal
 * endpoint for a full-quality image of it, says how long it has been out, and lets go of it on Stop
 * waiting; a final render that failed is offered again with Retry.
 */
import { Component, onMounted, onWillUnmount, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";

const ELAPSED_REFRESH_MS = 1000;

export class FrameActions extends Component {
    static template = "llm_fal_ai_realtime.FrameActions";
    static props = {
        /** `() => ({image, prompt, seed}) | null`: the frame on the canvas and the input it answers. */
        getFrame: { type: Function },
        /** How many frames the canvas drew (Keep waits for the first). */
        frames: { type: Number },
        /** The prompt and seed on screen, for a final render before the first frame. */
        prompt: { type: String },
        seed: { type: Number },
        /** The app the ticket opened, handed to `onKeep`. */
        app: { type: String },
        /** `async ({bytes, contentType, width, height, prompt, seed, app}) => void`: posts a frame. */
        onKeep: { type: Function },
        /** `async ({prompt, seed}) => void`: a final render (no button without it). */
        onRenderFinal: { type: Function, optional: true },
        /** The last final render, when it failed: `{error, prompt, seed}`, shown with Retry. */
        finalFailure: { type: [Object, Boolean], optional: true },
        /** `(api) => void`: `{keep, canKeep}` once mounted (the composer's Enter keeps), `null` when gone. */
        onReady: { type: Function, optional: true },
    };

    setup() {
        this.state = useState({ keeping: false, error: "", notice: "", rendering: false, elapsed: 0 });
        this.renderToken = 0;
        this.renderStarted = 0;
        this.gone = false;
        onMounted(() => {
            this.timer = setInterval(() => {
                if (this.state.rendering) {
                    this.state.elapsed = Math.round((Date.now() - this.renderStarted) / 1000);
                }
            }, ELAPSED_REFRESH_MS);
            this.props.onReady?.({ keep: () => this.onKeep(), canKeep: () => this.canKeep });
        });
        onWillUnmount(() => {
            this.gone = true;
            clearInterval(this.timer);
            this.props.onReady?.(null);
        });
    }

    get canKeep() {
        return Boolean(this.props.frames && !this.state.keeping);
    }

    /** Hand the current frame's bytes (as received, not re-encoded) to `onKeep`. */
    async onKeep() {
        const frame = this.props.getFrame();
        if (!this.canKeep || !frame) {
            if (!this.state.keeping) {
                this.state.notice = _t("Nothing to keep yet: the picture appears as you type.");
            }
            return;
        }
        const { image, seed, prompt } = frame;
        Object.assign(this.state, { notice: "", keeping: true, error: "" });
        try {
            await this.props.onKeep({
                bytes: new Uint8Array(image.content),
                contentType: image.content_type || "image/jpeg",
                width: image.width,
                height: image.height,
                prompt,
                seed,
                app: this.props.app,
            });
        } catch (error) {
            this.state.error = error?.message || String(error);
        } finally {
            this.state.keeping = false;
        }
    }

    get canRenderFinal() {
        const prompt = this.props.getFrame()?.prompt || this.props.prompt.trim();
        return Boolean(this.props.onRenderFinal && prompt && !this.state.rendering);
    }

    /**
     * Ask for a final render of what the canvas shows (the last frame's prompt and seed), or of `inputs`
     * (Retry). While it is out the button says how long it has been, and Stop waiting lets go of it.
     * @param {{prompt: string, seed: number|null}} [inputs]
     */
    async onRenderFinal(inputs = undefined) {
        if (!this.canRenderFinal && !(inputs && this.props.onRenderFinal && !this.state.rendering)) {
            return;
        }
        let prompt = inputs?.prompt;
        let seed = inputs?.seed ?? null;
        if (!inputs) {
            const frame = this.props.getFrame()?.prompt ? this.props.getFrame() : null;
            prompt = frame ? frame.prompt : this.props.prompt.trim();
            seed = frame && frame.seed !== null ? frame.seed : this.props.seed;
        }
        const token = ++this.renderToken;
        this.renderStarted = Date.now();
        Object.assign(this.state, { rendering: true, elapsed: 0, error: "" });
        try {
            await this.props.onRenderFinal({ prompt, seed });
        } catch (error) {
            if (token === this.renderToken && !this.gone) {
                this.state.error = error?.message || String(error);
            }
        } finally {
            if (token === this.renderToken && !this.gone) {
                this.state.rendering = false;
            }
        }
    }

    /** Stop waiting for a final render (the request may still reach fal: its message tells). */
    onStopWaiting() {
        this.renderToken++;
        this.state.rendering = false;
    }

    onRetryFinal() {
        const failure = this.props.finalFailure;
        if (failure) {
            this.onRenderFinal({ prompt: failure.prompt, seed: failure.seed ?? null });
        }
    }

    get renderingLabel() {
        return _t("Rendering… %s s", this.state.elapsed);
    }

    get finalFailureLabel() {
        return _t("The last final render failed: %s", this.props.finalFailure?.error || "");
    }
}
