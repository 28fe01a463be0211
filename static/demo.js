/**
 * The demo page: a prompt box, seed/strength/steps and an optional webcam drive a `<fal-live-canvas>`.
 * In dev mode the relay hands this page a ticket at /dev/ticket; elsewhere pass `?ticket=...&app=...`.
 */
import { LIVE_STATES } from "./fal_live_canvas.js";

const $ = (id) => document.getElementById(id);
const preview = $("preview");
const params = new URLSearchParams(location.search);
const STATUS_WORDS = Object.freeze({
    [LIVE_STATES.CONNECTING]: "connecting…",
    [LIVE_STATES.LIVE]: "live",
    [LIVE_STATES.RECONNECTING]: "reconnecting…",
    [LIVE_STATES.IDLE]: "idle — type to resume",
    [LIVE_STATES.CLOSED]: "closed",
});

async function devTicket({ app, session, role }) {
    const response = await fetch("/dev/ticket", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ app, session, role: session ? role : undefined }),
    });
    if (!response.ok) {
        throw new Error("this relay is not in dev mode: open the page with ?ticket=<ticket>&app=<owner/alias>");
    }
    const answer = await response.json();
    if (!$("app").options.length) {
        for (const app of answer.apps) {
            $("app").add(new Option(app, app, app === answer.app, app === answer.app));
        }
    }
    return answer;
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

function readControls() {
    preview.prompt = $("prompt").value;
    preview.seed = Number($("seed").value) || 0;
    preview.strength = Number($("strength").value);
    preview.steps = Number($("steps").value) || 4;
}

preview.addEventListener("statechange", ({ detail }) => {
    if (detail.state !== LIVE_STATES.ERROR) {
        setStatus(STATUS_WORDS[detail.state] || detail.state);
    }
});
preview.addEventListener("error", ({ detail }) => setStatus(`${detail.code}: ${detail.reason}`, true));
preview.addEventListener("frame", async ({ detail }) => {
    $("renderer").textContent = detail.result.renderer || "";
    $("keep").disabled = false;
    if ($("webcam").checked) {
        preview.setInput({ image_bytes: await webcamFrame() }); // the next webcam frame answers this one
    }
});

for (const id of ["prompt", "seed", "strength", "steps"]) {
    $(id).addEventListener("input", readControls);
}
$("strength").addEventListener("input", () => ($("strength-value").value = Number($("strength").value).toFixed(2)));
$("app").addEventListener("change", () => (preview.app = $("app").value));
$("keep").addEventListener("click", async () => {
    const blob = await preview.keep();
    const link = Object.assign(document.createElement("a"), {
        href: URL.createObjectURL(blob), download: "fal-live-preview.jpg", textContent: "download",
    });
    $("kept").replaceChildren(`Kept a ${(blob.size / 1024).toFixed(0)} kB JPEG: `, link);
});
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
    preview.setInput({ image_bytes: await webcamFrame() });
});

$("share").addEventListener("click", () => {
    // Drive a new live session: the widget reconnects with a driver ticket for it.
    // randomUUID exists in secure contexts only (https, loopback); getRandomValues everywhere.
    preview.session = crypto.randomUUID?.()
        ?? Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    const link = Object.assign(document.createElement("a"), {
        id: "watch-link", href: `/?watch=${encodeURIComponent(preview.session)}`, target: "_blank",
        textContent: "watch link",
    });
    $("shared").replaceChildren("Live session open — share the ", link, " (viewers see what you type).");
});

readControls();
if (params.get("watch")) {
    // A viewer page: the same widget, read-only, on the driver's session.
    document.body.classList.add("viewer");
    Object.assign(preview, { mode: "viewer", session: params.get("watch") });
    preview.getTicket = devTicket;
} else if (params.get("ticket")) {
    const app = params.get("app") || "local/preview";
    $("app").add(new Option(app, app, true, true));
    Object.assign(preview, { app, ticket: params.get("ticket") });
} else {
    preview.getTicket = devTicket;
}
