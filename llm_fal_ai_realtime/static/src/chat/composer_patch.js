/** @odoo-module **/
/**
 * The composer of a realtime thread does one thing, said on its button: for the person holding the
 * pen, Enter (or the button) keeps the frame on the live canvas, with its prompt, and the text stays
 * in the composer, where it goes on drawing; for everyone else it posts the text as a comment on the
 * picture, which starts no generation. Nothing goes down llm_thread's generation path.
 */
import { _t } from "@web/core/l10n/translation";
import { Composer } from "@mail/core/common/composer";
import { patch } from "@web/core/utils/patch";
import { useService } from "@web/core/utils/hooks";
import { useState } from "@odoo/owl";
import { callRoute, liveCanvasRevision, showMessage } from "@llm_fal_ai_realtime/chat/llm_chat_container_patch";

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

    get SEND_TEXT() {
        const config = this.liveCanvasConfig;
        if (!config) {
            return super.SEND_TEXT;
        }
        return this.liveCanvasDrives ? _t("Keep") : _t("Comment");
    },

    /** The send button's tooltip: what Enter does here. */
    get liveCanvasSendTitle() {
        const config = this.liveCanvasConfig;
        if (!config) {
            return undefined;
        }
        return this.liveCanvasDrives
            ? _t("Enter keeps the picture on the live canvas, with its prompt, in the conversation; your text stays here.")
            : _t("Enter posts your text as a comment on the picture; it starts no generation.");
    },

    get placeholder() {
        const config = this.liveCanvasConfig;
        if (!config) {
            return super.placeholder;
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
        if (this.liveCanvasDrives) {
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
    },
});
