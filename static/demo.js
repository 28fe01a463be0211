/**
 * The demo page: a prompt box, seed/strength/steps and an optional webcam drive the live preview.
 * In dev mode the relay hands this page a ticket at /dev/ticket; elsewhere pass `?ticket=...&app=...`.
 */
import { RealtimeClient } from "./fal_realtime.js";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const context = canvas.getContext("2d");
const params = new URLSearchParams(location.search);

async function devTicket(app) {
    const response = await fetch("/dev/ticket", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ app }),
    });
    if (!response.ok) {
        throw new Error("this relay is not in dev mode: open the page with ?ticket=<ticket>&app=<owner/alias>");
    }
    return response.json();
}

function ticketSource() {
    if (params.get("ticket")) {
        const app = params.get("app") || "local/preview";
        const scheme = location.protocol === "https:" ? "wss" : "ws";
        const answer = { url: `${scheme}://${location.host}/${app}/realtime`, ticket: params.get("ticket"), apps: [app] };
        return async () => answer;
    }
    return () => devTicket($("app").value || undefined);
}

function setStatus(text, isError = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", isError);
}

async function webcamFrame() {
    const video = $("video");
    if (!video.videoWidth) {
        return undefined;
    }
    const grab = new OffscreenCanvas(256, 256);
    const side = Math.min(video.videoWidth, video.videoHeight);
    grab.getContext("2d").drawImage(
        video, (video.videoWidth - side) / 2, (video.videoHeight - side) / 2, side, side, 0, 0, 256, 256);
    const blob = await grab.convertToBlob({ type: "image/jpeg", quality: 0.7 });
    return new Uint8Array(await blob.arrayBuffer());
}

async function main() {
    const getTicket = ticketSource();
    const first = await getTicket().catch((error) => {
        setStatus(error.message, true);
        throw error;
    });
    for (const app of first.apps || [first.app]) {
        $("app").add(new Option(app, app, app === first.app, app === first.app));
    }
    let client = null;

    async function input() {
        const value = {
            prompt: $("prompt").value,
            seed: Number($("seed").value) || 0,
            strength: Number($("strength").value),
            num_inference_steps: Number($("steps").value) || 4,
        };
        if ($("webcam").checked) {
            const image = await webcamFrame();
            if (image) {
                value.image_bytes = image;
            }
        }
        return value;
    }

    async function update() {
        client.send(await input());
    }

    function open() {
        client?.close();
        client = new RealtimeClient({ getTicket, throttleMs: 16 });
        client.addEventListener("statechange", ({ detail }) => {
            const words = { connecting: "connecting…", open: "live", reconnecting: "reconnecting…", idle: "idle — type to resume" };
            if (detail.state !== "error") {
                setStatus(words[detail.state] || detail.state);
            }
        });
        client.addEventListener("error", ({ detail }) => setStatus(`${detail.code}: ${detail.reason}`, true));
        client.addEventListener("frame", ({ detail }) => {
            if (detail.bitmap) {
                canvas.width = detail.bitmap.width;
                canvas.height = detail.bitmap.height;
                context.drawImage(detail.bitmap, 0, 0);
                detail.bitmap.close();
            }
            $("renderer").textContent = detail.result.renderer || "";
            if ($("webcam").checked) {
                update();
            }
        });
        client.connect().then(update);
    }

    for (const id of ["prompt", "seed", "strength", "steps"]) {
        $(id).addEventListener("input", update);
    }
    $("strength").addEventListener("input", () => ($("strength-value").value = Number($("strength").value).toFixed(2)));
    $("app").addEventListener("change", open);
    $("webcam").addEventListener("change", async () => {
        const video = $("video");
        if ($("webcam").checked) {
            try {
                video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
                await video.play();
            } catch (error) {
                $("webcam").checked = false;
                setStatus(`webcam unavailable: ${error.message}`, true);
            }
        } else if (video.srcObject) {
            video.srcObject.getTracks().forEach((track) => track.stop());
            video.srcObject = null;
        }
        update();
    });
    setInterval(() => {
        if (!client) {
            return;
        }
        const { fps, p50, p95 } = client.stats;
        $("fps").textContent = fps.toFixed(1);
        $("p50").textContent = p50 ? p50.toFixed(1) : "–";
        $("p95").textContent = p95 ? p95.toFixed(1) : "–";
    }, 250);
    open();
}

main();
