// React 19 passes custom elements' props through as they are; this gives <fal-live-canvas> its types in JSX.
import type { FalLiveCanvas, FalLiveCanvasAttributes } from "fal-realtime-browser/live-canvas";
import type { DetailedHTMLProps, HTMLAttributes } from "react";

declare module "react" {
    namespace JSX {
        interface IntrinsicElements {
            "fal-live-canvas": DetailedHTMLProps<HTMLAttributes<FalLiveCanvas>, FalLiveCanvas> & FalLiveCanvasAttributes;
        }
    }
}
