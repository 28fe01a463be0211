/** @odoo-module **/
/**
 * In a realtime thread every participant's paperclip uploads through the addon's route: mail's own
 * wants write access to the thread, which a follower who watches and comments does not have.
 */
import { AttachmentUploadService } from "@mail/core/common/attachment_upload_service";
import { patch } from "@web/core/utils/patch";

patch(AttachmentUploadService.prototype, {
    getUploadURL(thread) {
        const llmStore = this.env.services["llm.store"];
        const modelId = thread?.model_id?.id || thread?.model_id;
        if (thread?.model === "llm.thread" && llmStore?.realtimeApps?.has(modelId)) {
            return "/llm_fal_ai_realtime/attachment/upload";
        }
        return super.getUploadURL(...arguments);
    },
});
