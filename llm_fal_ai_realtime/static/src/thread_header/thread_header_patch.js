/** @odoo-module **/
/**
 * Invite, in a live canvas's header, for its owner: who is in the canvas (its followers, who watch,
 * comment and may hold the pen), in wizard/llm_fal_realtime_invite.py's dialog; their open chats
 * list it at once (models/llm_thread_people.py).
 */
import { LLMThreadHeader } from "@llm_thread/components/llm_thread_header/llm_thread_header";
import { _t } from "@web/core/l10n/translation";
import { user } from "@web/core/user";
import { useService } from "@web/core/utils/hooks";
import { patch } from "@web/core/utils/patch";

patch(LLMThreadHeader.prototype, {
    setup() {
        super.setup(...arguments);
        this.action = useService("action");
    },

    /** The owner of a realtime thread: the server sends its owner with realtime threads only. */
    get canInviteToLiveCanvas() {
        return this.hasActiveThread && this.activeThread.fal_realtime_owner_id === user.userId;
    },

    inviteToLiveCanvas() {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "llm.fal.realtime.invite",
            view_mode: "form",
            views: [[false, "form"]],
            name: _t("Invite colleagues to this live canvas"),
            target: "new",
            context: {
                default_thread_id: this.activeThread.id,
                dialog_size: "medium",
            },
        });
    },
});
