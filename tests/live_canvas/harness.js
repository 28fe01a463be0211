/**
 * Mounts the addon's LiveCanvas with the real @odoo/owl and the one browser client, imported
 * from the relay under test. The Python test (tests/test_live_canvas.py) exposes `mintTicket`
 * and reads what happened through `window.harness`.
 */
import { App, Component, useState, xml } from "@odoo/owl";
import { LiveCanvas } from "/addon/live_canvas/live_canvas.js";

const params = new URLSearchParams(location.search);
const relayHttp = params.get("relay");

function toBase64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
}

const harness = (window.harness = {
    ready: false,
    clients: [],
    lastFrame: null, // base64 of the last frame's image bytes, as the client decoded them
    kept: null, // what LiveCanvas handed to onKeep
    errors: [],
});

class Harness extends Component {
    static components = { LiveCanvas };
    static props = {};
    static template = xml`
        <div class="harness">
            <input class="harness_prompt" t-model="state.prompt" placeholder="prompt"/>
            <button class="harness_toggle" t-on-click="() => this.state.shown = !this.state.shown">toggle</button>
            <LiveCanvas t-if="state.shown" prompt="state.prompt" getTicket="getTicket" createClient="createClient"
                        onKeep="onKeep" width="256" height="256" title="'Harness preview'"/>
        </div>`;

    setup() {
        this.state = useState({ prompt: params.get("prompt") || "", shown: true });
        this.getTicket = () => window.mintTicket();
        this.createClient = (options) => this._createClient(options);
        this.onKeep = (frame) => this._onKeep(frame);
    }

    async _createClient(options) {
        const { RealtimeClient } = await import(`${relayHttp}/static/fal_realtime.js`);
        const client = new RealtimeClient(options);
        client.addEventListener("frame", (ev) => {
            harness.lastFrame = toBase64(ev.detail.image.content);
        });
        client.addEventListener("error", (ev) => harness.errors.push(ev.detail.code));
        harness.clients.push(client);
        return client;
    }

    async _onKeep(frame) {
        harness.kept = { ...frame, bytes: toBase64(frame.bytes) };
    }
}

const templates = await (await fetch("/addon/live_canvas/live_canvas.xml")).text();
await new App(Harness, { templates, dev: true }).mount(document.body);
harness.ready = true;
