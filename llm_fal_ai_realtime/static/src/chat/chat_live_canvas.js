/** @odoo-module **/
/**
 * The live canvas as the chat mounts it, in the addon's lazy bundle (`llm_fal_ai_realtime.live_canvas`):
 * LiveCanvas with the addon's copy of the browser client, registered for Odoo's `LazyComponent`. The
 * chat (llm_chat_container_patch.xml) loads the bundle the first time a realtime thread shows its
 * canvas, so no other page loads the client, msgpack or the canvas.
 */
import { registry } from "@web/core/registry";
import { RealtimeClient } from "@llm_fal_ai_realtime/fal_realtime/fal_realtime";
import { LiveCanvas } from "@llm_fal_ai_realtime/live_canvas/live_canvas";

/** The name the chat's `LazyComponent` asks for. */
export const CHAT_LIVE_CANVAS = "llm_fal_ai_realtime.LiveCanvas";

export class ChatLiveCanvas extends LiveCanvas {
    static props = { ...LiveCanvas.props, createClient: { ...LiveCanvas.props.createClient, optional: true } };
    static defaultProps = { ...LiveCanvas.defaultProps, createClient: (options) => new RealtimeClient(options) };
}

registry.category("lazy_components").add(CHAT_LIVE_CANVAS, ChatLiveCanvas);
