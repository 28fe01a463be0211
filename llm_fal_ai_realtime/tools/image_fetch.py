"""Fetching a finished image from fal's media URL once, so that Odoo keeps its own copy.

fal's result URLs are not a permanent home. The fetch is bounded every way a hostile or broken
server could stretch it: http(s) only, an image content type only, a size cap read in chunks
(whatever Content-Length claims), and one deadline for the whole transfer.
"""

import time
from urllib.parse import urlsplit

import requests

IMAGE_CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT = 30
CHUNK_BYTES = 64 * 1024


class ImageFetchError(Exception):
    """Raised when the image cannot be fetched, or what came back is not an image within the limits."""


def fetch_image(url, max_bytes=None, timeout=None):
    """GET an image, refusing anything that is not one or is too large or too slow.

    :param url: an http(s) URL
    :param max_bytes: largest image accepted (default ``MAX_IMAGE_BYTES``)
    :param timeout: seconds for the whole transfer, connect included (default ``FETCH_TIMEOUT``)
    :return: ``(bytes, content type)``
    :raise ImageFetchError: saying what was wrong (no URL or body in it beyond the host)
    """
    max_bytes = MAX_IMAGE_BYTES if max_bytes is None else max_bytes
    timeout = FETCH_TIMEOUT if timeout is None else timeout
    parts = urlsplit(url if isinstance(url, str) else "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageFetchError("the image URL is not an http(s) URL")
    deadline = time.monotonic() + timeout
    try:
        with requests.get(url, stream=True, timeout=timeout) as reply:
            if reply.status_code != 200:
                raise ImageFetchError(f"{parts.hostname} answered HTTP {reply.status_code}")
            content_type = reply.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type not in IMAGE_CONTENT_TYPES:
                raise ImageFetchError(f"{parts.hostname} sent {content_type or 'no content type'}, not an image")
            declared = reply.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ImageFetchError(f"the image is larger than {max_bytes} bytes")
            chunks, size = [], 0
            for chunk in reply.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise ImageFetchError(f"the image is larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise ImageFetchError(f"the image took longer than {timeout} s to arrive")
                chunks.append(chunk)
    except requests.RequestException as error:
        raise ImageFetchError(f"{parts.hostname} could not be reached: {type(error).__name__}") from error
    return b"".join(chunks), content_type
