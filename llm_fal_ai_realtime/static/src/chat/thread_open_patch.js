/** @odoo-module **/
/**
 * On a phone-sized screen, mail's `setAsDiscussThread` ends with `thread.open()`, which for any
 * model but discuss.channel opens the record's form view with its plain chatter: a realtime thread
 * picked in LLM > Chat would lose its live canvas and its composer. While the LLM chat selects a
 * realtime thread (llmStore.selectThread, patched in llm_chat_container_patch.js), the chat itself
 * shows it, so `open()` has nothing to do.
 */
import { Thread } from "@mail/core/common/thread_model";
import { patch } from "@web/core/utils/patch";

patch(Thread.prototype, {
    open(options) {
        const llmStore = this.store.env.services["llm.store"];
        const modelId = this.model_id?.id || this.model_id;
        if (
            this.model === "llm.thread" &&
            llmStore?.liveCanvasSelecting === this.id &&
            llmStore.realtimeApps?.has(modelId)
        ) {
            return;
        }
        return super.open(...arguments);
    },
});
