/**
 * The demo page: a prompt box, seed/strength/steps and an optional webcam drive a `<fal-live-canvas>`.
 * In dev mode the relay hands this page a ticket at /dev/ticket; elsewhere pass `?ticket=...&app=...`.
 * The status line shows the widget's own words; the ranges are the inputs' own min and max.
 */
const $ = (id) => document.getElementById(id);
const preview = $("preview");
const params = new URLSearchParams(location.search);
// Wire field -> the control that sets it.
const CONTROLS = Object.freeze({ seed: "seed", strength: "strength", num_inference_steps: "steps" });

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
        oneAppOnly();
    }
    return answer;
}

function oneAppOnly() {
    const only = $("app").options.length < 2;
    $("app").disabled = only;
    $("app").title = only ? "This relay serves this one app" : "";
}

function setStatus(text, tone = "") {
    $("status").textContent = text;
    $("status").classList.toggle("error", tone === "error");
    $("status").classList.toggle("warn", tone === "warn");
}

/** The widget's input limits, from the controls' own min, max and step. */
function controlLimits() {
    const limits = {};
    for (const [field, id] of Object.entries(CONTROLS)) {
        const control = $(id);
        limits[field] = { min: Number(control.min), max: Number(control.max), integer: Number(control.step) === 1 };
    }
    return limits;
}

const numberOrNothing = (control) => (control.value === "" ? undefined : Number(control.value));

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
    // Read as typed: the widget refuses an out-of-range value and says why, and sends nothing.
    preview.setInput({
        prompt: $("prompt").value,
        seed: numberOrNothing($("seed")),
        strength: Number($("strength").value),
        num_inference_steps: numberOrNothing($("steps")),
    });
}

preview.addEventListener("status", ({ detail }) => setStatus(detail.text, detail.tone));
preview.addEventListener("inputerror", ({ detail }) => {
    $("problem").textContent = detail ? `${detail.message[0].toUpperCase()}${detail.message.slice(1)}` : "";
    for (const [field, id] of Object.entries(CONTROLS)) {
        $(id).setAttribute("aria-invalid", String(detail?.field === field));
    }
});
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
            $("problem").textContent = `Webcam unavailable: ${error.message}`;
        }
    } else if (video.srcObject) {
        video.srcObject.getTracks().forEach((track) => track.stop());
        video.srcObject = null;
    }
    // Strength only weighs an input image against the prompt: without one it changes nothing.
    $("strength").disabled = !$("webcam").checked;
    $("strength-hint").textContent = $("webcam").checked
        ? "How far the picture may move from the webcam image"
        : "How far the picture may move from the webcam image: turn on the webcam to use it";
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

preview.limits = controlLimits();
readControls();
if (params.get("watch")) {
    // A viewer page: the same widget, read-only, on the driver's session.
    document.body.classList.add("viewer");
    $("watching").hidden = false;
    Object.assign(preview, { mode: "viewer", session: params.get("watch") });
    preview.getTicket = devTicket;
} else if (params.get("ticket")) {
    const app = params.get("app") || "local/preview";
    $("app").add(new Option(app, app, true, true));
    oneAppOnly();
    Object.assign(preview, { app, ticket: params.get("ticket") });
} else {
    preview.getTicket = devTicket;
}
