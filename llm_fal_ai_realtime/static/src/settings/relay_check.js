/** @odoo-module **/
/**
 * Test connection on the settings page, with the values on screen (saved or not), and the relay's
 * own list of apps to choose the allowed apps from. It calls `res.config.settings.fal_realtime_check`
 * directly, not a form button: a form button would first ask to save (Odoo's "Unsaved changes"),
 * and saving is exactly what an administrator trying values out does not want yet.
 */
import { Component, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";

const ALLOWED_FIELD = "fal_realtime_allowed_apps";
const PRESS_CLICK_MS = 1000; // a click this soon after a press is that press's own

/** @param {string} text the allowed apps as typed: comma, space or newline separated */
export function splitApps(text) {
    return [...new Set((text || "").split(/[\s,]+/).filter(Boolean))];
}

export class RelayCheck extends Component {
    static template = "llm_fal_ai_realtime.RelayCheck";
    static props = { ...standardWidgetProps };

    setup() {
        this.orm = useService("orm");
        this.state = useState({ running: false, verdict: null });
    }

    get allowedApps() {
        return splitApps(this.props.record.data[ALLOWED_FIELD]);
    }

    /** Apps allowed here (on screen) that the relay will refuse; known once the relay listed its apps. */
    get refusedApps() {
        const served = this.state.verdict?.relay_apps || [];
        return served.length ? this.allowedApps.filter((app) => !served.includes(app)) : [];
    }

    label(app) {
        return this.state.verdict?.labels?.[app] || app;
    }

    isAllowed(app) {
        return this.allowedApps.includes(app);
    }

    /** Allow or stop allowing an app: edits the field on screen, which Save then stores. */
    setAllowed(app, allowed) {
        const apps = this.allowedApps.filter((other) => other !== app);
        if (allowed) {
            apps.push(app);
        }
        this.props.record.update({ [ALLOWED_FIELD]: apps.join(", ") });
    }

    /**
     * A press on Test connection runs it at once and leaves the focus where it is: moving the focus out
     * of a field just typed in commits it, which may show a hint above the button and move the button
     * away before the release, so the click would be lost. Keyboard presses still come as clicks.
     */
    onPress(ev) {
        if (ev.button !== 0) {
            return;
        }
        ev.preventDefault();
        this.pressedAt = Date.now();
        this.test();
    }

    onClick() {
        if (Date.now() - (this.pressedAt || 0) < PRESS_CLICK_MS) {
            return; // the press already ran it
        }
        this.test();
    }

    async test() {
        if (this.state.running) {
            return;
        }
        this.state.running = true;
        try {
            const proms = [];
            this.props.record.model.bus.trigger("NEED_LOCAL_CHANGES", { proms }); // typed, not yet committed
            await Promise.all(proms);
            const data = this.props.record.data;
            this.state.verdict = await this.orm.call("res.config.settings", "fal_realtime_check", [], {
                relay_url: data.fal_realtime_relay_url || "",
                secret: data.fal_realtime_shared_secret || "",
                allowed_apps: data[ALLOWED_FIELD] || "",
                kid: data.fal_realtime_shared_secret_kid || "",
            });
        } finally {
            this.state.running = false;
        }
    }
}

registry.category("view_widgets").add("fal_realtime_relay_check", { component: RelayCheck });
