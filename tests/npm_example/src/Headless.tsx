// The client without the widget: frames counted, errors typed, words from describe().
import { useEffect, useRef, useState } from "react";
import { ERROR_CODES, RealtimeClient, type RealtimeError, STATES, type State } from "fal-realtime-browser";
import { fetchTicket } from "./ticket";

export function Headless({ prompt }: { prompt: string }) {
    const client = useRef<RealtimeClient | null>(null);
    const [state, setState] = useState<State>(STATES.IDLE);
    const [words, setWords] = useState("");
    const [frames, setFrames] = useState(0);
    const [size, setSize] = useState("");
    const [problem, setProblem] = useState("");

    useEffect(() => {
        const live = new RealtimeClient({ getTicket: () => fetchTicket({ app: "local/preview" }), throttleMs: 16 });
        client.current = live;
        live.addEventListener("statechange", (event) => {
            setState(event.detail.state);
            setWords(live.describe().text);
        });
        live.addEventListener("frame", (event) => {
            const { bitmap } = event.detail;
            if (bitmap) {
                setSize(`${bitmap.width}x${bitmap.height}`);
                bitmap.close();
            }
            setFrames((n) => n + 1);
        });
        live.addEventListener("error", (event) => {
            const error: RealtimeError = event.detail;
            setProblem(error.code === ERROR_CODES.RATE_LIMITED ? "slow down" : `${error.code}: ${error.reason}`);
        });
        return () => {
            live.close();
            client.current = null;
        };
    }, []);

    useEffect(() => {
        if (prompt) {
            client.current?.send({ prompt, seed: 7, num_inference_steps: 2 });
        }
    }, [prompt]);

    return (
        <p id="headless" data-state={state} data-frames={frames} data-size={size}>
            client: {words} · {frames} frames {size && `(${size})`} {problem}
        </p>
    );
}
