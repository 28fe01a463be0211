/** @odoo-module **/
/**
 * Odoo glue for LiveCanvas (kept thin on purpose): which threads get a live canvas, and the props the
 * chat mounts it with: where tickets come from (the session endpoint), where kept frames go (the Keep
 * endpoint, then the mail store so the message shows at once), where final renders go (a generation
 * job), and the pen's routes. The canvas itself, with the one browser client, is in the addon's lazy
 * bundle (chat_live_canvas.js): Odoo's LazyComponent loads it the first time a realtime thread shows.
 * While the canvas is open this tab is in the thread's room (live_room.js); the LLM store keeps the
 * canvas settings and hears the room on the bus (live_canvas_store.js).
 */
import { _t } from "@web/core/l10n/translation";
import { useEffect, useState } from "@odoo/owl";
import { LLMChatContainer } from "@llm_thread/components/llm_chat_container/llm_chat_container";
import { LazyComponent } from "@web/core/assets";
import { patch } from "@web/core/utils/patch";
import { useService } from "@web/core/utils/hooks";
import { user } from "@web/core/user";
import { callRoute } from "@llm_fal_ai_realtime/chat/call_route";
import { showMessage, threadListRevision } from "@llm_fal_ai_realtime/chat/live_canvas_store";
import { LiveRoom, TAB_ID } from "@llm_fal_ai_realtime/chat/live_room";
import { canInviteToLiveCanvas, inviteToLiveCanvas } from "@llm_fal_ai_realtime/chat/live_canvas_invite";

function bytesToBase64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
}

patch(LLMChatContainer, {
    components: { ...LLMChatContainer.components, LazyComponent },
});

patch(LLMChatContainer.prototype, {
    setup() {
        super.setup(...arguments);
        this.liveCanvasNotification = useService("notification");
        this.threadListRevision = useState(threadListRevision);
        // Load the canvas settings (role, pen, assistant) of each realtime thread the chat shows.
        useEffect(
            (threadId, modelId) => {
                if (threadId && modelId) {
                    this.llmStore.loadLiveCanvas(threadId).catch((error) => {
                        this.liveCanvasNotification.add(error.message, { type: "danger" });
                    });
                }
            },
            () => [
                this.hasLiveCanvas ? this.activeThread.id : undefined,
                this.liveCanvasModelId,
                this.activeThread?.assistant_id?.id || this.activeThread?.assistant_id,
            ]
        );
        // This tab is in the thread's room while its canvas is open.
        useEffect(
            (threadId) => {
                if (!threadId) {
                    return;
                }
                const room = new LiveRoom(threadId, callRoute, (state) => this.llmStore.onRoomState(state));
                this.liveCanvasRoom = room;
                room.start();
                return () => {
                    room.leave();
                    if (this.liveCanvasRoom === room) {
                        this.liveCanvasRoom = null;
                    }
                };
            },
            () => [this.hasLiveCanvas ? this.activeThread.id : undefined]
        );
        // The pen left this user (handed over, taken back): the prompt in the composer was for drawing,
        // not a comment draft, so it goes; the new holder's composer gets it (liveCanvasHandedPrompts).
        let lastRole;
        useEffect(
            (threadId, role) => {
                if (threadId && lastRole === "driver" && role === "viewer" && this.threadComposer) {
                    this.threadComposer.text = "";
                    delete this.llmStore.liveCanvasCommenting[threadId];
                }
                lastRole = role;
            },
            () => [this.hasLiveCanvas ? this.activeThread.id : undefined, this.liveCanvasConfig?.role]
        );
        // A pen handed to this user arrives with the prompt on the canvas: it goes on from the same picture.
        useEffect(
            (threadId, handed) => {
                if (threadId && handed !== undefined && this.threadComposer) {
                    delete this.llmStore.liveCanvasHandedPrompts[threadId];
                    if (!this.threadComposer.text?.trim()) {
                        this.threadComposer.text = handed;
                    }
                }
            },
            () => {
                const threadId = this.hasLiveCanvas ? this.activeThread.id : undefined;
                return [threadId, threadId && this.llmStore.liveCanvasHandedPrompts[threadId]];
            }
        );
        this.liveCanvasOrm = useService("orm");
    },

    /** @returns {object|undefined} the active realtime thread's canvas settings, once loaded */
    /** The list also follows live canvases this user is invited into or removed from (on the bus). */
    get filteredThreadList() {
        void this.threadListRevision.value;
        return super.filteredThreadList;
    },

    get liveCanvasConfig() {
        return this.hasLiveCanvas ? this.llmStore.liveCanvasConfigs[this.activeThread.id] : undefined;
    },

    /**
     * The composer's text inside the assistant's prompt template (nothing while the composer is empty);
     * while the pen holder writes a comment, the prompt they had before.
     */
    get liveCanvasPrompt() {
        const commenting = this.hasLiveCanvas && this.llmStore.liveCanvasCommenting[this.activeThread.id];
        const text = (commenting ? commenting.prompt : this.threadComposer?.text)?.trim() || "";
        const config = this.liveCanvasConfig;
        return text && config ? `${config.prompt_prefix}${text}${config.prompt_suffix}` : text;
    },

    /** Viewer: has this user asked for the pen, still unanswered? */
    get liveCanvasPenRequested() {
        return this.liveCanvasConfig?.request?.id === user.userId;
    },

    /** Driver: the name of whoever asks for the pen ("" when nobody does, or when it is this user). */
    get liveCanvasPenRequest() {
        const request = this.liveCanvasConfig?.request;
        return request && request.id !== user.userId ? request.name : "";
    },

    liveCanvasSetApi(threadId, api) {
        if (api) {
            this.llmStore.liveCanvasApis[threadId] = api;
        } else {
            delete this.llmStore.liveCanvasApis[threadId];
        }
    },

    async liveCanvasRequestPen(threadId) {
        const state = await callRoute("/llm_fal_ai_realtime/pen", { thread_id: threadId, action: "request" });
        Object.assign(this.llmStore.liveCanvasConfigs[threadId], state);
        this.liveCanvasNotification.add(_t("You asked %s for the pen.", state.driver.name), { type: "info" });
    },

    /** The owner takes the pen back from whoever holds it; anyone who may takes a free pen. */
    async liveCanvasTakePen(threadId) {
        await callRoute("/llm_fal_ai_realtime/pen", { thread_id: threadId, action: "take" });
        await this.llmStore.loadLiveCanvas(threadId);
    },

    /** "Not now": the pen holder keeps the pen; the asker is told. */
    async liveCanvasDeclinePen(threadId) {
        await callRoute("/llm_fal_ai_realtime/pen", { thread_id: threadId, action: "decline" });
        await this.llmStore.loadLiveCanvas(threadId);
    },

    /** Does this user have the thread open in another tab too? */
    get liveCanvasOtherTab() {
        const me = this.liveCanvasConfig?.watchers?.find((watcher) => watcher.id === user.userId);
        return Boolean(me && me.tabs > 1);
    },

    /** Another tab of this user said "Draw here". */
    get liveCanvasDrawsElsewhere() {
        const tab = this.hasLiveCanvas && this.llmStore.liveCanvasDrawingTabs[this.activeThread.id];
        return Boolean(tab && tab !== TAB_ID);
    },

    async liveCanvasDrawHere(threadId) {
        this.llmStore.liveCanvasDrawingTabs[threadId] = TAB_ID;
        await this.liveCanvasRoom?.draw();
    },

    liveCanvasAvatarUrl(userId) {
        return `/web/image/res.users/${userId}/avatar_128`;
    },

    /** Hand the pen to whoever asked, with the composer's text, so they go on from the same picture. */
    async liveCanvasGivePen(threadId) {
        const config = this.llmStore.liveCanvasConfigs[threadId];
        await callRoute("/llm_fal_ai_realtime/pen", {
            thread_id: threadId,
            action: "give",
            user_id: config.request.id,
            prompt: this.threadComposer?.text?.trim() || "",
        });
        await this.llmStore.loadLiveCanvas(threadId);
    },

    /** "New live canvas": the server picks the realtime model (the first allowed app) and opens the thread. */
    async createLiveCanvasThread() {
        const threadId = await this.liveCanvasOrm.call("llm.model", "fal_realtime_new_thread", []);
        await this.llmStore.refreshThreadsAndSelect(threadId);
    },

    /** @returns {number|undefined} the active thread's model id, when that model is realtime */
    get liveCanvasModelId() {
        const thread = this.activeThread;
        if (thread?.model !== "llm.thread") {
            return undefined;
        }
        const modelId = thread.model_id?.id || thread.model_id;
        return this.llmStore.realtimeApps?.has(modelId) ? modelId : undefined;
    },

    /** On a phone the header is the chat's own bar: Invite sits there (the desktop header has its own). */
    get liveCanvasCanInvite() {
        return this.hasLiveCanvas && canInviteToLiveCanvas(this.activeThread);
    },

    liveCanvasInvite() {
        return inviteToLiveCanvas(this.action, this.activeThread);
    },

    get hasLiveCanvas() {
        return Boolean(this.liveCanvasModelId);
    },

    /** Whom the canvas is for: when the pen changes hands, only the two people concerned reconnect. */
    get liveCanvasKey() {
        return `${this.activeThread.id}-${this.liveCanvasModelId}-${this.liveCanvasConfig.role}`;
    },

    /** LiveCanvas's props (live_canvas.js documents each) for the active realtime thread. */
    get liveCanvasProps() {
        const threadId = this.activeThread.id;
        const modelId = this.liveCanvasModelId;
        const config = this.liveCanvasConfig;
        const model = this.activeThread.model_id;
        return {
            prompt: this.liveCanvasPrompt,
            role: config.role,
            title: model?.name || model?.display_name || undefined,
            assistantName: config.assistant ? config.assistant.name : "",
            driverName: config.driver.name,
            seed: config.inputs.seed,
            strength: config.inputs.strength,
            steps: config.inputs.steps,
            width: config.inputs.width,
            height: config.inputs.height,
            finalFailure: config.final_failure,
            penRequest: this.liveCanvasPenRequest,
            penRequested: this.liveCanvasPenRequested,
            penFree: config.pen_free,
            watchers: config.watchers,
            avatarUrl: (id) => this.liveCanvasAvatarUrl(id),
            otherTab: this.liveCanvasOtherTab,
            drawsElsewhere: this.liveCanvasDrawsElsewhere,
            onDrawHere: () => this.liveCanvasDrawHere(threadId),
            expanded: Boolean(this.llmStore.liveCanvasExpanded[threadId]),
            onExpandedChange: (expanded) => (this.llmStore.liveCanvasExpanded[threadId] = expanded),
            onRequestPen: () => this.liveCanvasRequestPen(threadId),
            onGivePen: () => this.liveCanvasGivePen(threadId),
            onDeclinePen: () => this.liveCanvasDeclinePen(threadId),
            onTakePen: config.can_take_pen ? () => this.liveCanvasTakePen(threadId) : undefined,
            onReady: (api) => this.liveCanvasSetApi(threadId, api),
            getTicket: () => this.liveCanvasGetTicket(threadId, modelId),
            onKeep: config.can_keep ? (frame) => this.liveCanvasKeep(threadId, frame) : undefined,
            onRenderFinal: this.liveCanvasCanRenderFinal
                ? (inputs) => this.liveCanvasRenderFinal(threadId, inputs)
                : undefined,
        };
    },

    /** Realtime threads keep the composer: its text drives the live canvas. */
    isMediaGenerationModel(thread) {
        const modelId = thread?.model_id?.id || thread?.model_id;
        if (this.llmStore.realtimeApps?.has(modelId)) {
            return false;
        }
        return super.isMediaGenerationModel(thread);
    },

    /** The server picks the app (the thread's model); `modelId` is what this tab expects, refused if stale. */
    liveCanvasGetTicket(threadId, modelId) {
        return callRoute("/llm_fal_ai_realtime/session", { thread_id: threadId, model_id: modelId });
    },

    /** The embedded preview app has no final render; fal's realtime models do (their normal endpoint). */
    get liveCanvasCanRenderFinal() {
        return Boolean(this.llmStore.realtimeApps?.get(this.liveCanvasModelId)?.can_render_final
            && this.liveCanvasConfig?.can_render_final);
    },

    /** Show a message the server just posted (the store payload: message, attachments, author) at once. */
    liveCanvasShowMessage(threadId, { store, message_id }) {
        showMessage(this.mailStore, { thread_id: threadId, message_id, store });
    },

    /**
     * Render final as an llm_fal_ai generation job; the image arrives in the thread when fal has
     * finished. A job fal did not take is an error LiveCanvas shows, never a success.
     */
    async liveCanvasRenderFinal(threadId, { prompt, seed }) {
        const answer = await callRoute("/llm_fal_ai_realtime/render_final", { thread_id: threadId, prompt, seed });
        this.liveCanvasShowMessage(threadId, answer);
        await this.llmStore.loadLiveCanvas(threadId); // a failure stays on the canvas, with Retry
        if (answer.state === "failed") {
            return; // said by the canvas's failure line and marked on the request message
        }
        this.liveCanvasNotification.add(
            _t("Rendering at full quality: the image will appear in the conversation when fal.ai has finished."),
            { type: "info" }
        );
    },

    async liveCanvasKeep(threadId, frame) {
        const composer = this.threadComposer;
        const attachments = [...(composer?.attachments || [])];
        const kept = await callRoute("/llm_fal_ai_realtime/keep", {
            thread_id: threadId,
            image: bytesToBase64(frame.bytes),
            prompt: frame.prompt,
            seed: frame.seed,
            app: frame.app,
            attachment_ids: attachments.map((attachment) => attachment.id),
        });
        // The files went with the frame; the text stays (it goes on drawing).
        for (const attachment of attachments) {
            composer.attachments = composer.attachments.filter((a) => a.id !== attachment.id);
        }
        this.liveCanvasShowMessage(threadId, kept);
        this.liveCanvasNotification.add(_t("The frame is kept in the conversation."), { type: "success" });
    },
});
