/** @odoo-module **/
/**
 * The realtime marker (icon and label) for a `realtime_kind` selection field: a bolt for fal.ai's
 * realtime models, a chip for the relay's embedded CPU preview, nothing for other models. Used in
 * Fetch Models and the model views; the chat's model picker shows the same marker (thread_header).
 */
import { Component } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

/** Icon per kind; the label is the selection's own (translated) label. */
export const REALTIME_ICONS = Object.freeze({ fal: "fa-bolt", preview: "fa-microchip" });

export class RealtimeMarker extends Component {
    static template = "llm_fal_ai_realtime.RealtimeMarker";
    static props = { ...standardFieldProps };

    get kind() {
        return this.props.record.data[this.props.name];
    }

    get label() {
        const selection = this.props.record.fields[this.props.name].selection || [];
        return (selection.find(([value]) => value === this.kind) || [])[1] || "";
    }

    get icon() {
        return REALTIME_ICONS[this.kind] || "";
    }
}

registry.category("fields").add("fal_realtime_marker", {
    component: RealtimeMarker,
    displayName: "Realtime marker",
    supportedTypes: ["selection"],
});
