"""Image inputs as a webcam image-to-image stream sends them: JPEGs of a chosen size.

A camera frame of noise-like detail compresses about as badly as a real one, so the JPEG's size
is set by its side length: the side is searched until the encoded frame is within a few percent of
the size asked for, and the result is cached (the load generator builds it once per point).
"""

from __future__ import annotations

import functools
import io
import random

from PIL import Image, ImageFilter

QUALITY = 80
MIN_SIDE, MAX_SIDE = 16, 4096


def _encode(side: int, seed: int) -> bytes:
    rng = random.Random(seed)
    noise = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    # A little blur, as a camera's optics give: pure noise would be a worst case no webcam sends.
    frame = noise.filter(ImageFilter.GaussianBlur(0.6))
    buffer = io.BytesIO()
    frame.save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


@functools.lru_cache(maxsize=8)
def webcam_jpeg(target_bytes: int, seed: int = 7) -> bytes:
    """A decodable JPEG of about `target_bytes` (the largest square frame not above it)."""
    if target_bytes <= 0:
        raise ValueError(f"image size must be positive, not {target_bytes}")
    # Bytes grow with the area: one small encoding gives the side to search around.
    probe = 128
    estimate = probe * (target_bytes / len(_encode(probe, seed))) ** 0.5
    low, high = max(MIN_SIDE, int(estimate * 0.7)), min(MAX_SIDE, int(estimate * 1.3) + 1)
    best = _encode(MIN_SIDE, seed)
    while low <= high:
        side = (low + high) // 2
        data = _encode(side, seed)
        if len(data) <= target_bytes:
            best, low = data, side + 1
        else:
            high = side - 1
    return best
