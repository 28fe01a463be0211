/**
 * Mounts the addon's LiveCanvas with the real @odoo/owl and the one browser client, as the
 * addon bundles it (served from this page's origin, as Odoo serves it). The Python test (tests/test_live_canvas.py) exposes `mintTicket`
 * and reads what happened through `window.harness`; setting `harness.refusal` (or `?refuse=`)
 * makes the ticket source refuse, as Odoo's session endpoint does.
 */
import { App, Component, useState, xml } from "@odoo/owl";
import { ERROR_MESSAGES, LiveCanvas } from "/addon/live_canvas/live_canvas.js";

const params = new URLSearchParams(location.search);

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
    sent: [], // every input LiveCanvas handed to the client
    frames: [], // {bytes, input}: each frame's image bytes (base64) and the input the client says it answers
    kept: null, // what LiveCanvas handed to onKeep
    errors: [],
    refusal: params.get("refuse"), // when set, the ticket source refuses with this message
    clientNoTicket: null, // the client module's NO_TICKET export
    canvasMessages: ERROR_MESSAGES,
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
        this.getTicket = () => this._getTicket();
        this.createClient = (options) => this._createClient(options);
        this.onKeep = (frame) => this._onKeep(frame);
    }

    async _getTicket() {
        if (harness.refusal) {
            throw new Error(harness.refusal);
        }
        return window.mintTicket();
    }

    async _createClient(options) {
        const module = await import("/addon/fal_realtime/fal_realtime.js"); // the addon's copy, as Odoo loads it
        harness.clientNoTicket = module.NO_TICKET;
        const client = new module.RealtimeClient(options);
        const send = client.send.bind(client);
        client.send = (input) => {
            harness.sent.push(input);
            send(input);
        };
        // Added before LiveCanvas's own listener, so it sees each frame first.
        client.addEventListener("frame", (ev) => {
            harness.frames.push({ bytes: toBase64(ev.detail.image.content), input: ev.detail.input });
        });
        client.addEventListener("error", (ev) => harness.errors.push(ev.detail.code));
        harness.clients.push(client);
        return client;
    }

    async _onKeep(frame) {
        harness.kept = { ...frame, bytes: toBase64(frame.bytes) };
    }
}

const app = new App(Harness, { dev: true });
for (const url of await (await fetch("/templates")).json()) {
    app.addTemplates(await (await fetch(url)).text()); // the component's and its sub-components'
}
await app.mount(document.body);
harness.ready = true;
