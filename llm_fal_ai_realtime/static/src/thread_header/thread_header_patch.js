/** @odoo-module **/
/**
 * The chat's desktop header: Invite for a live canvas's owner (live_canvas_invite.js); the model
 * picker's realtime markers are in the template.
 */
import { LLMThreadHeader } from "@llm_thread/components/llm_thread_header/llm_thread_header";
import { useService } from "@web/core/utils/hooks";
import { patch } from "@web/core/utils/patch";
import { canInviteToLiveCanvas, inviteToLiveCanvas } from "@llm_fal_ai_realtime/chat/live_canvas_invite";

patch(LLMThreadHeader.prototype, {
    setup() {
        super.setup(...arguments);
        this.action = useService("action");
    },

    get canInviteToLiveCanvas() {
        return this.hasActiveThread && canInviteToLiveCanvas(this.activeThread);
    },

    inviteToLiveCanvas() {
        return inviteToLiveCanvas(this.action, this.activeThread);
    },
});
