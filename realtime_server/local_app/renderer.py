"""A procedural CPU renderer: prompt and seed in, a JPEG out, in a few milliseconds.

It is not a diffusion model and never says it is. Each word of the prompt becomes a shape whose
kind and colour come from the word and whose place comes from the word and the seed, so the same
prompt and seed always give the same picture, a new word visibly adds something, and an input
image shows through in proportion to `1 - strength`, as in image-to-image diffusion.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont

RENDERER_NAME = "local/preview: procedural Pillow renderer on CPU (not a diffusion model)"
MAX_WORDS = 24


@dataclass(frozen=True)
class RenderRequest:
    prompt: str
    seed: int
    width: int = 512
    height: int = 512
    num_inference_steps: int = 4
    strength: float = 0.6
    image_bytes: bytes | None = None


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()


def _colour(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    return data[offset], data[offset + 1], data[offset + 2]


def _background(request: RenderRequest) -> Image.Image:
    tone = _digest("background", request.prompt.strip().lower())
    top, bottom = _colour(tone, 0), _colour(tone, 3)
    gradient = Image.linear_gradient("L").resize((request.width, request.height))
    return Image.composite(Image.new("RGB", gradient.size, bottom), Image.new("RGB", gradient.size, top), gradient)


def _draw_word(draw: ImageDraw.ImageDraw, word: str, index: int, request: RenderRequest) -> None:
    look = _digest("word", word.lower())
    rng = random.Random(_digest("place", word.lower(), index, request.seed))
    w, h = request.width, request.height
    size = rng.uniform(0.12, 0.35) * min(w, h)
    cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
    fill = (*_colour(look, 0), 210)
    outline = (*_colour(look, 3), 255)
    kind = look[6] % 4
    box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    if kind == 0:
        draw.ellipse(box, fill=fill, outline=outline, width=3)
    elif kind == 1:
        draw.rounded_rectangle(box, radius=size / 6, fill=fill, outline=outline, width=3)
    else:
        sides = 3 + look[7] % 5 if kind == 2 else 5 + look[7] % 4
        draw.regular_polygon((cx, cy, size / 2), sides, rotation=rng.uniform(0, 360), fill=fill, outline=outline)


def _caption(image: Image.Image, request: RenderRequest) -> None:
    draw = ImageDraw.Draw(image, "RGBA")
    size = max(10, request.height // 32)
    font = ImageFont.load_default(size=size)
    text = f"{request.prompt.strip()[:60] or '(empty prompt)'}  ·  seed {request.seed}"
    bar = size + 10
    draw.rectangle((0, request.height - bar, request.width, request.height), fill=(0, 0, 0, 140))
    draw.text((8, request.height - bar + 5), text, fill=(255, 255, 255, 255), font=font)


def render(request: RenderRequest) -> Image.Image:
    """Draw the picture for `request` (deterministic for equal requests)."""
    image = _background(request)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for index, word in enumerate(request.prompt.split()[:MAX_WORDS]):
        _draw_word(draw, word, index, request)
    image.paste(layer, mask=layer)
    # Fewer "steps" leave a softer picture, as a few-step diffusion model does.
    blur = 6.0 / max(1, request.num_inference_steps)
    if blur > 0.5:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    if request.image_bytes:
        source = Image.open(io.BytesIO(request.image_bytes)).convert("RGB").resize(image.size)
        image = Image.blend(source, image, max(0.0, min(1.0, request.strength)))
    _caption(image, request)
    return image


def render_jpeg(request: RenderRequest, quality: int = 82) -> bytes:
    buffer = io.BytesIO()
    render(request).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
