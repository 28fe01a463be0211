/** @odoo-module **/
/** Who has the canvas open right now: each person once, the pen holder first (the server's order). */
import { Component } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";

export class RoomWatchers extends Component {
    static template = "llm_fal_ai_realtime.RoomWatchers";
    static props = {
        /** `[{id, name, tabs, pen}]`, as the room's state lists them. */
        watchers: { type: Array },
        /** `(id) => url` of a watcher's avatar (Odoo's user avatar route, in Odoo); no avatars without it. */
        avatarUrl: { type: Function, optional: true },
    };

    /** @param {{name: string, pen: boolean}} watcher @returns {string} the name's tooltip */
    title(watcher) {
        return watcher.pen ? _t("%s (holds the pen)", watcher.name) : watcher.name;
    }
}
