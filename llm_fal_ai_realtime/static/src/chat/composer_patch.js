/** @odoo-module **/
/**
 * The composer of a realtime thread does one thing, said on its button's tooltip: for the person
 * holding the pen, Enter (or the button) keeps the frame on the live canvas, with its prompt and the
 * files attached, and the text stays in the composer, where it goes on drawing; for everyone else it
 * posts the text (and files) as a comment on the picture, which starts no generation. The pen holder
 * can comment too: the Comment button beside Keep sets the prompt aside (the canvas keeps drawing it),
 * Enter posts the comment and the prompt comes back. Nothing goes down llm_thread's generation path.
 */
import { _t } from "@web/core/l10n/translation";
import { Composer } from "@mail/core/common/composer";
import { patch } from "@web/core/utils/patch";
import { useService } from "@web/core/utils/hooks";
import { useState } from "@odoo/owl";
import { callRoute } from "@llm_fal_ai_realtime/chat/call_route";
import { liveCanvasRevision, showMessage } from "@llm_fal_ai_realtime/chat/live_canvas_store";

patch(Composer.prototype, {
    setup() {
        super.setup(...arguments);
        this.liveCanvasNotification = useService("notification");
        this.liveCanvasMailStore = useService("mail.store");
        this.liveCanvasRevision = useState(liveCanvasRevision);
    },

    /** @returns {object|null} the live canvas settings when this composer writes into a realtime thread */
    get liveCanvasConfig() {
        if (!this.llmStore || !this.liveCanvasRevision.value) {
            return null; // read first, so that this composer renders again once the canvas settings arrive
        }
        const thread = this.props.composer?.thread;
        if (thread?.model !== "llm.thread" || !this.llmStore || this.props.composer.message) {
            return null;
        }
        const modelId = thread.model_id?.id || thread.model_id;
        if (!this.llmStore.realtimeApps?.has(modelId)) {
            return null;
        }
        return this.llmStore.liveCanvasConfigs?.[thread.id] || null;
    },

    get liveCanvasDrives() {
        return this.liveCanvasConfig?.role === "driver";
    },

    /** The pen holder is writing a comment: `{prompt}` set aside meanwhile, or undefined. */
    get liveCanvasCommenting() {
        return this.liveCanvasDrives ? this.llmStore.liveCanvasCommenting[this.props.composer.thread.id] : undefined;
    },

    /** Enter keeps the frame (the pen holder, not writing a comment). */
    get liveCanvasKeeps() {
        return this.liveCanvasDrives && !this.liveCanvasCommenting;
    },

    get SEND_TEXT() {
        const config = this.liveCanvasConfig;
        if (!config) {
            return super.SEND_TEXT;
        }
        return this.liveCanvasKeeps ? _t("Keep") : _t("Comment");
    },

    get liveCanvasCommentLabel() {
        return this.liveCanvasCommenting
            ? _t("Back to drawing: your prompt returns to the composer")
            : _t("Write a comment: your prompt is set aside, the picture stays");
    },

    /** The pen holder switches between drawing (Enter keeps) and commenting (Enter posts a comment). */
    liveCanvasToggleComment() {
        const composer = this.props.composer;
        const threadId = composer.thread.id;
        const commenting = this.llmStore.liveCanvasCommenting;
        if (commenting[threadId]) {
            composer.text = commenting[threadId].prompt;
            delete commenting[threadId];
        } else {
            commenting[threadId] = { prompt: composer.text || "" };
            composer.text = "";
        }
        this.liveCanvasRevision.value += 1;
        this.ref?.el?.focus();
    },

    onKeydown(ev) {
        if (ev.key === "Escape" && this.liveCanvasCommenting) {
            ev.preventDefault();
            this.liveCanvasToggleComment();
            return;
        }
        super.onKeydown(ev);
    },

    /** The send button's tooltip: what Enter does here. */
    get liveCanvasSendTitle() {
        const config = this.liveCanvasConfig;
        if (!config) {
            return undefined;
        }
        return this.liveCanvasKeeps
            ? _t("Keep (Enter): the picture on the live canvas, with its prompt, goes into the conversation; your text stays here.")
            : _t("Comment (Enter): posts your text as a comment on the picture; it starts no generation.");
    },

    get placeholder() {
        const config = this.liveCanvasConfig;
        if (!config) {
            return super.placeholder;
        }
        if (this.liveCanvasCommenting) {
            return _t("Write a comment… Enter posts it, Esc goes back to drawing.");
        }
        return this.liveCanvasDrives
            ? _t("Describe the picture: it follows your words. Enter keeps it.")
            : _t("Comment on the picture…");
    },

    async sendMessage() {
        const config = this.liveCanvasConfig;
        if (!config) {
            return super.sendMessage(...arguments);
        }
        const threadId = this.props.composer.thread.id;
        if (this.props.composer.attachments.some(({ uploading }) => uploading)) {
            // As mail's composer: the file goes with the message, so the message waits for it.
            this.liveCanvasNotification.add(_t("Please wait while the file is uploading."), { type: "warning" });
            return;
        }
        if (this.liveCanvasKeeps) {
            const canvas = this.llmStore.liveCanvasApis[threadId];
            if (!canvas) {
                this.liveCanvasNotification.add(_t("The live canvas is not ready yet."), { type: "info" });
                return;
            }
            await canvas.keep(); // says itself when there is nothing to keep yet; the text stays
            return;
        }
        await this.liveCanvasComment(threadId);
    },

    /** Post the composer's text as a comment; the composer is cleared only once it is posted. */
    async liveCanvasComment(threadId) {
        const composer = this.props.composer;
        const body = composer.text?.trim() || "";
        const attachmentIds = (composer.attachments || []).map((attachment) => attachment.id);
        if (!body && !attachmentIds.length) {
            return;
        }
        let answer;
        try {
            answer = await callRoute("/llm_fal_ai_realtime/comment", {
                thread_id: threadId,
                body,
                attachment_ids: attachmentIds,
            });
        } catch (error) {
            this.liveCanvasNotification.add(error.message, { type: "danger" });
            return;
        }
        composer.clear();
        showMessage(this.liveCanvasMailStore, { thread_id: threadId, ...answer });
        if (this.liveCanvasCommenting) {
            this.liveCanvasToggleComment(); // the comment is out: back to drawing, with the prompt
        }
    },
});
