/** @odoo-module **/
/**
 * The pen, the right to draw on a shared canvas: the person holding it answers a request (Hand over,
 * Not now); the others ask for it, take it back (the owner) or take it when it is free. Each action
 * is the caller's (a route in Odoo); this component shows it running and what went wrong.
 */
import { Component, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";

export class PenActions extends Component {
    static template = "llm_fal_ai_realtime.PenActions";
    static props = {
        /** This person holds the pen (answers requests) or not (asks, takes). */
        isDriver: { type: Boolean },
        /** Driver: the name of a viewer who asks for the pen, shown with Hand over ("" when nobody asks). */
        penRequest: { type: String, optional: true },
        /** Viewer: the pen was asked for and the driver has not answered yet. */
        penRequested: { type: Boolean, optional: true },
        /** The pen holder left or went idle: whoever may take it sees "Take the pen" (not "back"). */
        penFree: { type: Boolean, optional: true },
        /** Viewer: `async () => void` asks the driver for the pen (no button without it). */
        onRequestPen: { type: Function, optional: true },
        /** Owner watching someone else draw, or anyone when the pen is free: `async () => void` takes it. */
        onTakePen: { type: Function, optional: true },
        /** Driver: `async () => void` hands the pen to the viewer who asked. */
        onGivePen: { type: Function, optional: true },
        /** Driver: `async () => void` answers a request for the pen with "Not now". */
        onDeclinePen: { type: Function, optional: true },
    };
    static defaultProps = { penRequest: "", penRequested: false, penFree: false };

    setup() {
        // asking: a request or a take is out; handing: Hand over or Not now is out
        this.state = useState({ asking: false, handing: false, error: "" });
    }

    get penRequestLabel() {
        return _t("%s asks for the pen.", this.props.penRequest);
    }

    /**
     * Run one pen action, `busy` (asking or handing) meanwhile; a failure is shown beside the buttons.
     * Taking and handing over stay busy on success: the canvas opens again in the new role.
     */
    async run(action, busy, { settle = true } = {}) {
        if (!action || this.state[busy]) {
            return;
        }
        this.state[busy] = true;
        this.state.error = "";
        try {
            await action();
        } catch (error) {
            this.state.error = error?.message || String(error);
            this.state[busy] = false;
            return;
        }
        if (settle) {
            this.state[busy] = false;
        }
    }

    onRequestPen() {
        return this.run(this.props.onRequestPen, "asking");
    }

    onTakePen() {
        return this.run(this.props.onTakePen, "asking", { settle: false });
    }

    onGivePen() {
        return this.run(this.props.onGivePen, "handing", { settle: false });
    }

    onDeclinePen() {
        return this.run(this.props.onDeclinePen, "handing");
    }
}
