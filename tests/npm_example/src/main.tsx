import { StrictMode, useEffect, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import "fal-realtime-browser/live-canvas"; // defines <fal-live-canvas>
import type { State } from "fal-realtime-browser";
import { Headless } from "./Headless";

function App() {
    const [prompt, setPrompt] = useState("");
    const [state, setState] = useState<State | "">("");
    const [frames, setFrames] = useState(0);
    const canvas = useRef<HTMLElementTagNameMap["fal-live-canvas"]>(null);

    useEffect(() => {
        const element = canvas.current;
        if (!element) {
            return;
        }
        const onState = (event: CustomEvent<{ state: State }>) => setState(event.detail.state);
        const onFrame = () => setFrames((n) => n + 1);
        element.addEventListener("statechange", onState);
        element.addEventListener("frame", onFrame);
        return () => {
            element.removeEventListener("statechange", onState);
            element.removeEventListener("frame", onFrame);
        };
    }, []);

    return (
        <main>
            <input id="prompt" value={prompt} placeholder="Describe a picture" onChange={(e) => setPrompt(e.target.value)} />
            <fal-live-canvas ref={canvas} app="local/preview" ticket-url="/ticket" prompt={prompt} steps={2} width={256}
                height={256} hud="" />
            <p id="widget" data-state={state} data-frames={frames}>widget: {state} · {frames} frames</p>
            <Headless prompt={prompt} />
        </main>
    );
}

createRoot(document.getElementById("root")!).render(<StrictMode><App /></StrictMode>);
