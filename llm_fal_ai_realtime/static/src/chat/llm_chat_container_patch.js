/** @odoo-module **/
/**
 * Odoo glue for LiveCanvas (kept thin on purpose): which threads get a live canvas, where
 * tickets come from (the session endpoint), where the one browser client comes from (this
 * addon's asset bundle: `static/fal_realtime.js` copied by scripts/sync-odoo-client, so no code
 * from the relay's origin runs in Odoo's pages), where kept frames go (the Keep endpoint, then
 * the mail store so the message shows at once) and where final renders go (a generation job).
 * Every call carries the user context, so the server works in the companies the switcher has active.
 */
import { _t } from "@web/core/l10n/translation";
import { LLMChatContainer } from "@llm_thread/components/llm_chat_container/llm_chat_container";
import { llmStoreService } from "@llm_thread/services/llm_store_service";
import { rpc } from "@web/core/network/rpc";
import { patch } from "@web/core/utils/patch";
import { useService } from "@web/core/utils/hooks";
import { user } from "@web/core/user";
import { LiveCanvas } from "@llm_fal_ai_realtime/live_canvas/live_canvas";
import { RealtimeClient } from "@llm_fal_ai_realtime/fal_realtime/fal_realtime";

/**
 * Call one of the addon's JSON routes with the user context; an error becomes an Error with
 * the server's message (what LiveCanvas shows).
 * @param {string} route
 * @param {object} params
 */
async function callRoute(route, params) {
    try {
        return await rpc(route, { ...params, context: user.context });
    } catch (error) {
        throw new Error(error.data?.message || error.message);
    }
}

function bytesToBase64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
}

patch(llmStoreService, {
    start(env, services) {
        const llmStore = super.start(env, services);
        const { orm } = services;
        const getDataLoaders = llmStore.getDataLoaders.bind(llmStore);
        Object.assign(llmStore, {
            // Map<modelId, {app, can_render_final}> of the realtime models of the active companies
            realtimeApps: new Map(),
            async loadRealtimeModels() {
                const models = await orm.call("llm.model", "fal_realtime_apps", []);
                this.realtimeApps.clear();
                for (const { id, ...model } of models) {
                    this.realtimeApps.set(id, model);
                }
            },
            getDataLoaders() {
                return [...getDataLoaders(), this.loadRealtimeModels];
            },
        });
        return llmStore;
    },
});

patch(LLMChatContainer, {
    components: { ...LLMChatContainer.components, LiveCanvas },
});

patch(LLMChatContainer.prototype, {
    setup() {
        super.setup(...arguments);
        this.liveCanvasNotification = useService("notification");
        this.liveCanvasOrm = useService("orm");
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

    get hasLiveCanvas() {
        return Boolean(this.liveCanvasModelId);
    },

    /** Realtime threads keep the composer: its text drives the live canvas. */
    isMediaGenerationModel(thread) {
        const modelId = thread?.model_id?.id || thread?.model_id;
        if (this.llmStore.realtimeApps?.has(modelId)) {
            return false;
        }
        return super.isMediaGenerationModel(thread);
    },

    liveCanvasGetTicket(threadId, modelId) {
        return callRoute("/llm_fal_ai_realtime/session", { thread_id: threadId, model_id: modelId });
    },

    liveCanvasCreateClient(options) {
        return new RealtimeClient(options);
    },

    /** The embedded preview app has no final render; fal's realtime models do (their normal endpoint). */
    get liveCanvasCanRenderFinal() {
        return Boolean(this.llmStore.realtimeApps?.get(this.liveCanvasModelId)?.can_render_final);
    },

    /** Show a message the server just posted (the store payload: message, attachments, author) at once. */
    liveCanvasShowMessage(threadId, { store, message_id }) {
        this.mailStore.insert(store, { html: true });
        const message = this.mailStore.Message.get(message_id);
        const thread = this.mailStore.Thread.get({ model: "llm.thread", id: threadId });
        if (thread && message && !thread.messages.some((m) => m.id === message.id)) {
            thread.messages.push(message);
        }
    },

    /**
     * Render final as an llm_fal_ai generation job; the image arrives in the thread when fal has
     * finished. A job fal did not take is an error LiveCanvas shows, never a success.
     */
    async liveCanvasRenderFinal(threadId, { prompt, seed }) {
        const answer = await callRoute("/llm_fal_ai_realtime/render_final", { thread_id: threadId, prompt, seed });
        this.liveCanvasShowMessage(threadId, answer);
        if (answer.state === "failed") {
            throw new Error(_t("fal.ai did not take the final render: %s", answer.error));
        }
        this.liveCanvasNotification.add(
            _t("Rendering at full quality: the image will appear in the conversation when fal.ai has finished."),
            { type: "info" }
        );
    },

    async liveCanvasKeep(threadId, frame) {
        const kept = await callRoute("/llm_fal_ai_realtime/keep", {
            thread_id: threadId,
            image: bytesToBase64(frame.bytes),
            prompt: frame.prompt,
            seed: frame.seed,
            app: frame.app,
        });
        this.liveCanvasShowMessage(threadId, kept);
        this.liveCanvasNotification.add(_t("The frame is kept in the conversation."), { type: "success" });
    },
});
