/** @odoo-module **/
/**
 * The LLM store's side of realtime threads: each thread's canvas settings (who holds the pen, the
 * assistant's prompt template and inputs) from /llm_fal_ai_realtime/canvas, the realtime models of the
 * active companies, and the room's news on the bus (models/llm_thread_room.py): everyone's messages,
 * who is watching, the pen's moves, a new model or assistant. The chat and the composer read it.
 */
import { _t } from "@web/core/l10n/translation";
import { reactive } from "@odoo/owl";
import { llmStoreService } from "@llm_thread/services/llm_store_service";
import { patch } from "@web/core/utils/patch";
import { user } from "@web/core/user";
import { callRoute } from "@llm_fal_ai_realtime/chat/call_route";

const PEN_NOTIFICATION = "llm_fal_ai_realtime/pen";
// A message posted or changed in a realtime thread, for every participant's open chat (models/llm_thread_room.py).
const MESSAGE_NOTIFICATION = "llm_fal_ai_realtime/message";
const ROOM_NOTIFICATION = "llm_fal_ai_realtime/room";
const CANVAS_NOTIFICATION = "llm_fal_ai_realtime/canvas";
const DRAW_NOTIFICATION = "llm_fal_ai_realtime/draw";
const INVITED_NOTIFICATION = "llm_fal_ai_realtime/invited";
const REMOVED_NOTIFICATION = "llm_fal_ai_realtime/removed";
const ROOM_FIELDS = ["watchers", "driver", "request", "pen_free"];

/**
 * Bumped when a live canvas joins or leaves this user's chat list: llm_thread's list reads the mail
 * store's records, whose additions alone re-render nothing.
 */
export const threadListRevision = reactive({ value: 0 });

/** This user was invited into a live canvas: it joins their chat list. */
export function listThread(mailStore, { store }) {
    mailStore.insert(store);
    threadListRevision.value += 1;
}

/** This user was removed from a live canvas: it leaves their chat list, and their screen if shown. */
export function forgetThread(mailStore, { thread_id }) {
    const thread = mailStore.Thread.get({ model: "llm.thread", id: thread_id });
    if (!thread) {
        return;
    }
    if (mailStore.discuss.thread?.eq(thread)) {
        mailStore.discuss.thread = undefined;
    }
    thread.delete();
    threadListRevision.value += 1;
}

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
            // {threadId: true} where the user opened the canvas out of its strip on a narrow screen
            liveCanvasExpanded: {},
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
        bus.subscribe(INVITED_NOTIFICATION, (payload) => listThread(mailStore, payload));
        bus.subscribe(REMOVED_NOTIFICATION, (payload) => forgetThread(mailStore, payload));
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
