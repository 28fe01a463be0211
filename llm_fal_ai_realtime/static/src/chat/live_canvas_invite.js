/** @odoo-module **/
/**
 * Invite colleagues into a live canvas, for its owner: its followers watch, comment and may hold the
 * pen (wizard/llm_fal_realtime_invite.py's dialog); their open chats list it at once
 * (models/llm_thread_people.py). The desktop header (thread_header_patch.js) and the phone's bar
 * (llm_chat_container_patch.xml) both offer it.
 */
import { _t } from "@web/core/l10n/translation";
import { user } from "@web/core/user";

/** Whether this user may invite into `thread`: the server sends the owner with realtime threads only. */
export function canInviteToLiveCanvas(thread) {
    return Boolean(thread) && thread.fal_realtime_owner_id === user.userId;
}

/** Open the invite dialog for `thread` with the action service. */
export function inviteToLiveCanvas(action, thread) {
    return action.doAction({
        type: "ir.actions.act_window",
        res_model: "llm.fal.realtime.invite",
        view_mode: "form",
        views: [[false, "form"]],
        name: _t("Invite colleagues to this live canvas"),
        target: "new",
        context: { default_thread_id: thread.id, dialog_size: "medium" },
    });
}
