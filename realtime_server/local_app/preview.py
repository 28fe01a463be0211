"""`local/preview`: a real fal app (fal's server SDK, `@fal.realtime`) around the CPU renderer.

Its input mirrors fal's realtime latent-consistency apps, and its output has their shape
(`images[0].content` as JPEG bytes), plus `renderer`, which says plainly what drew the picture.
"""

from __future__ import annotations

import random
import time
from typing import Any

import fal
from pydantic import BaseModel, Field

from .renderer import RENDERER_NAME, RenderRequest, render_jpeg


class PreviewInput(BaseModel):
    prompt: str = Field("", max_length=2000)
    image_bytes: bytes | None = None
    strength: float = Field(0.6, ge=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    num_inference_steps: int = Field(4, ge=1, le=50)
    width: int = Field(512, ge=64, le=1024)
    height: int = Field(512, ge=64, le=1024)


def make_preview_app(session_timeout: float) -> type[fal.App]:
    """Build the app class; `session_timeout` is how long it waits for input before ending a session."""

    class LocalPreview(fal.App, name="preview"):  # type: ignore[no-untyped-call]
        @fal.realtime("/realtime", buffering=1, session_timeout=session_timeout)
        def realtime(self, input: PreviewInput) -> dict[str, Any]:
            seed = input.seed if input.seed is not None else random.randrange(2**32)
            started = time.perf_counter()
            content = render_jpeg(
                RenderRequest(
                    prompt=input.prompt, seed=seed, width=input.width, height=input.height,
                    num_inference_steps=input.num_inference_steps, strength=input.strength,
                    image_bytes=input.image_bytes,
                )
            )
            return {
                "images": [
                    {"content": content, "width": input.width, "height": input.height, "content_type": "image/jpeg"}
                ],
                "seed": seed,
                "timings": {"inference": time.perf_counter() - started},
                "renderer": RENDERER_NAME,
            }

    return LocalPreview
