/** @odoo-module **/
/**
 * Odoo glue for LiveCanvas (kept thin on purpose): which threads get a live canvas, where
 * tickets come from (the session endpoint), where the one browser client comes from (this
 * addon's asset bundle: `static/fal_realtime.js` copied by scripts/sync-odoo-client, so no code
 * from the relay's origin runs in Odoo's pages), where kept frames go (the Keep endpoint, then
 * the mail store so the message shows at once) and where final renders go (a generation job).
 * It also keeps each realtime thread's canvas settings (who holds the pen, the assistant's prompt
 * template and inputs) in the LLM store, and makes the thread a live room: this tab joins it while
 * the canvas is open (live_room.js), and the bus brings everyone's messages, who is watching, the
 * pen's moves, and a new model or assistant (models/llm_thread_room.py).
 * Every call carries the user context, so the server works in the companies the switcher has active.
 */
import { _t } from "@web/core/l10n/translation";
import { reactive, useEffect } from "@odoo/owl";
import { LLMChatContainer } from "@llm_thread/components/llm_chat_container/llm_chat_container";
import { llmStoreService } from "@llm_thread/services/llm_store_service";
import { rpc } from "@web/core/network/rpc";
import { patch } from "@web/core/utils/patch";
import { useService } from "@web/core/utils/hooks";
import { user } from "@web/core/user";
import { LiveCanvas } from "@llm_fal_ai_realtime/live_canvas/live_canvas";
import { LiveRoom, TAB_ID } from "@llm_fal_ai_realtime/chat/live_room";
import { RealtimeClient } from "@llm_fal_ai_realtime/fal_realtime/fal_realtime";

/**
 * Call one of the addon's JSON routes with the user context; an error becomes an Error with
 * the server's message (what LiveCanvas shows).
 * @param {string} route
 * @param {object} params
 */
export async function callRoute(route, params) {
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

const PEN_NOTIFICATION = "llm_fal_ai_realtime/pen";
// A message posted or changed in a realtime thread, for every participant's open chat (models/llm_thread_room.py).
const MESSAGE_NOTIFICATION = "llm_fal_ai_realtime/message";
const ROOM_NOTIFICATION = "llm_fal_ai_realtime/room";
const CANVAS_NOTIFICATION = "llm_fal_ai_realtime/canvas";
const DRAW_NOTIFICATION = "llm_fal_ai_realtime/draw";
const ROOM_FIELDS = ["watchers", "driver", "request", "pen_free"];

/**
 * Show a message the server posted (the store payload: message, attachments, author) in its thread,
 * once: the tab that posted it, and the bus, may both bring it.
 * @param {object} mailStore
 * @param {{thread_id: number, message_id: number, store: object}} posted
 */
export function showMessage(mailStore, { thread_id, message_id, store }) {
    mailStore.insert(store, { html: true });
    const message = mailStore.Message.get(message_id);
    const thread = mailStore.Thread.get({ model: "llm.thread", id: thread_id });
    if (thread && message && !thread.messages.some((m) => m.id === message.id)) {
        thread.messages.push(message);
    }
}

/**
 * Counts changes of the live canvas settings and of the realtime models. The composer reads it through
 * its own useState, so it renders again on each change: it does not render again on the LLM store's.
 */
export const liveCanvasRevision = reactive({ value: 0 });
const MAX_SEED = 2 ** 31 - 1;

// The pen changes hands on the bus; the store needs the bus service for that.
llmStoreService.dependencies = [
    ...new Set([...llmStoreService.dependencies, "bus_service", "mail.store", "notification"]),
];

patch(llmStoreService, {
    start(env, services) {
        const llmStore = super.start(env, services);
        const { orm, bus_service: bus, notification } = services;
        const mailStore = services["mail.store"];
        const getDataLoaders = llmStore.getDataLoaders.bind(llmStore);
        Object.assign(llmStore, {
            // {threadId: canvas settings} from /llm_fal_ai_realtime/canvas: role, pen, assistant, inputs
            liveCanvasConfigs: {},
            // {threadId: {keep, canKeep}} of the mounted live canvas, for the composer's Enter
            liveCanvasApis: {},
            // {threadId: text}: the prompt the previous pen holder left, for the new one's composer
            liveCanvasHandedPrompts: {},
            // {threadId: tab id} of this user's tab that draws, once one said "Draw here"
            liveCanvasDrawingTabs: {},
            // {threadId: {prompt}}: the pen holder writes a comment; the canvas keeps this prompt meanwhile
            liveCanvasCommenting: {},
            async loadLiveCanvas(threadId) {
                const config = await callRoute("/llm_fal_ai_realtime/canvas", { thread_id: threadId });
                const seedPolicy = config.inputs.seed_policy;
                if (seedPolicy === "random") {
                    config.inputs.seed = Math.floor(Math.random() * MAX_SEED);
                }
                this.liveCanvasConfigs[threadId] = config;
                liveCanvasRevision.value += 1;
                return config;
            },
            /** The pen changed hands (or someone asked for it): reload the thread's canvas settings. */
            async onPenNotification(payload) {
                if (!(payload.thread_id in this.liveCanvasConfigs)) {
                    return;
                }
                if (payload.declined?.id === user.userId) {
                    notification.add(_t("%s keeps the pen for now.", payload.declined.by), { type: "info" });
                }
                const before = this.liveCanvasConfigs[payload.thread_id];
                const config = await this.loadLiveCanvas(payload.thread_id);
                if (before.role !== "driver" && config.role === "driver" && payload.prompt) {
                    this.liveCanvasHandedPrompts[payload.thread_id] = payload.prompt;
                }
            },
            /** Who is watching changed: the list, and (when the pen came free) what this user may do. */
            onRoomState(state) {
                const config = this.liveCanvasConfigs[state.thread_id];
                if (!config) {
                    return;
                }
                const penMoved = state.pen_free !== config.pen_free || state.driver.id !== config.driver.id;
                for (const field of ROOM_FIELDS) {
                    config[field] = state[field];
                }
                liveCanvasRevision.value += 1;
                if (penMoved) {
                    this.loadLiveCanvas(state.thread_id).catch(() => {});
                }
            },
            /** The thread's model or assistant changed (here or in someone else's tab): follow it. */
            async onCanvasNotification({ thread_id }) {
                const thread = mailStore.Thread.get({ model: "llm.thread", id: thread_id });
                if (!thread) {
                    return;
                }
                await thread.fetchData(["model_id", "assistant_id", "prompt_id"]);
                if (thread_id in this.liveCanvasConfigs) {
                    await this.loadLiveCanvas(thread_id);
                }
            },
            // Map<modelId, {app, can_render_final}> of the realtime models of the active companies
            realtimeApps: new Map(),
            async loadRealtimeModels() {
                const models = await orm.call("llm.model", "fal_realtime_apps", []);
                this.realtimeApps.clear();
                for (const { id, ...model } of models) {
                    this.realtimeApps.set(id, model);
                }
                liveCanvasRevision.value += 1;
            },
            getDataLoaders() {
                return [...getDataLoaders(), this.loadRealtimeModels];
            },
        });
        bus.subscribe(PEN_NOTIFICATION, (payload) => llmStore.onPenNotification(payload));
        bus.subscribe(MESSAGE_NOTIFICATION, (payload) => showMessage(mailStore, payload));
        bus.subscribe(ROOM_NOTIFICATION, (state) => llmStore.onRoomState(state));
        bus.subscribe(CANVAS_NOTIFICATION, (payload) => llmStore.onCanvasNotification(payload));
        bus.subscribe(DRAW_NOTIFICATION, ({ thread_id, tab }) => {
            llmStore.liveCanvasDrawingTabs[thread_id] = tab;
            liveCanvasRevision.value += 1;
        });
        // The chat shows the thread it selects, on a phone too (thread_open_patch.js reads this).
        const selectThread = llmStore.selectThread.bind(llmStore);
        llmStore.selectThread = async (threadId) => {
            llmStore.liveCanvasSelecting = threadId;
            try {
                return await selectThread(threadId);
            } finally {
                llmStore.liveCanvasSelecting = null;
            }
        };
        // Picking an assistant reloads the canvas settings before it returns, so the next frame uses it.
        if (llmStore.selectAssistant) {
            const selectAssistant = llmStore.selectAssistant.bind(llmStore);
            llmStore.selectAssistant = async (assistantId) => {
                const threadId = llmStore.activeLLMThread?.id;
                await selectAssistant(assistantId);
                if (threadId in llmStore.liveCanvasConfigs) {
                    await llmStore.loadLiveCanvas(threadId);
                }
            };
        }
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

    /** The server picks the app (the thread's model); `modelId` is what this tab expects, refused if stale. */
    liveCanvasGetTicket(threadId, modelId) {
        return callRoute("/llm_fal_ai_realtime/session", { thread_id: threadId, model_id: modelId });
    },

    liveCanvasCreateClient(options) {
        return new RealtimeClient(options);
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
