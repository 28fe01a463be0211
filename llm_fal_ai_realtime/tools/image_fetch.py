"""Fetching a finished image from fal's media URL once, so that Odoo keeps its own copy.

fal's result URLs are not a permanent home. The fetch is bounded every way a hostile or broken
server could stretch it: http(s) only; the host resolved once, every address checked to be a public
one, and the connection made to the address checked (a second lookup cannot swap in another);
redirects followed only after checking their target the same way, a few at most; an image content
type only; a size cap read in chunks (whatever Content-Length claims); and one deadline for the
whole transfer, connects, TLS, redirects and every byte included (a server dripping bytes cannot
hold the job's row lock past it). Name lookups are bounded by the system resolver's own timeout.
"""

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urljoin, urlsplit

IMAGE_CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT = 30
MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class ImageFetchError(Exception):
    """Raised when the image cannot be fetched, or what came back is not an image within the limits."""


def _public_address(host, port, allow_loopback):
    """Resolve ``host`` and return one address to connect to, refusing any that is not public.

    :raise ImageFetchError: the host does not resolve, or resolves to a private, loopback,
        link-local, multicast or reserved address (any of its addresses: a name that also points
        inside is refused as a whole)
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise ImageFetchError(f"{host} could not be resolved") from error
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        if allow_loopback and address.is_loopback:
            continue
        if not address.is_global or address.is_multicast:
            raise ImageFetchError(f"{host} resolves to {address}, which is not a public address")
    if not addresses:
        raise ImageFetchError(f"{host} could not be resolved")
    return str(addresses[0])


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP connection to an address already checked, whatever the host name resolves to now."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedTLSConnection(_PinnedConnection):
    """HTTPS to the checked address; the certificate is still verified for the host name."""

    def connect(self):
        super().connect()
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)


def fetch_image(url, max_bytes=None, timeout=None, allow_loopback=False):
    """GET an image, refusing anything that is not one or is too large, too slow or not public.

    :param url: an http(s) URL
    :param max_bytes: largest image accepted (default ``MAX_IMAGE_BYTES``)
    :param timeout: seconds for the whole transfer, redirects included (default ``FETCH_TIMEOUT``)
    :param allow_loopback: also accept loopback addresses; only the addon's tests set this (their
        stand-in for fal's media host runs on 127.0.0.1), never private or link-local ones
    :return: ``(bytes, content type)``
    :raise ImageFetchError: saying what was wrong (no URL or body in it beyond the host)
    """
    max_bytes = MAX_IMAGE_BYTES if max_bytes is None else max_bytes
    timeout = FETCH_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    url = url if isinstance(url, str) else ""
    for _hop in range(MAX_REDIRECTS + 1):
        status, location, result = _fetch_once(url, max_bytes, timeout, deadline, allow_loopback)
        if status not in REDIRECT_STATUSES:
            return result
        if not location:
            raise ImageFetchError(f"{urlsplit(url).hostname} redirected without a Location")
        url = urljoin(url, location)  # checked again, from scratch, on the next hop
    raise ImageFetchError(f"more than {MAX_REDIRECTS} redirects")


def _fetch_once(url, max_bytes, timeout, deadline, allow_loopback):
    """One request of the transfer: ``(status, Location or None, (bytes, content type) or None)``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageFetchError("the image URL is not an http(s) URL")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise ImageFetchError("the image URL has an invalid port") from error
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ImageFetchError(f"the image took longer than {timeout} s to arrive")
    address = _public_address(host, port, allow_loopback)
    connection_class = _PinnedTLSConnection if parts.scheme == "https" else _PinnedConnection
    connection = connection_class(host, port, address, timeout=remaining)
    # The one deadline: whatever the connection is waiting for when it passes, the socket is shut.
    watchdog = threading.Timer(remaining, _shut, [connection])
    watchdog.daemon = True
    watchdog.start()
    try:
        path = parts.path or "/"
        connection.request("GET", f"{path}?{parts.query}" if parts.query else path,
                           headers={"Accept": ", ".join(sorted(IMAGE_CONTENT_TYPES)), "Connection": "close"})
        reply = connection.getresponse()
        if reply.status in REDIRECT_STATUSES:
            return reply.status, reply.getheader("Location"), None
        if reply.status != 200:
            raise ImageFetchError(f"{host} answered HTTP {reply.status}")
        content_type = (reply.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in IMAGE_CONTENT_TYPES:
            raise ImageFetchError(f"{host} sent {content_type or 'no content type'}, not an image")
        declared = reply.getheader("Content-Length") or ""
        if declared.isdigit() and int(declared) > max_bytes:
            raise ImageFetchError(f"the image is larger than {max_bytes} bytes")
        chunks, size = [], 0
        while True:
            chunk = reply.read1(CHUNK_BYTES)  # whatever has arrived: a drip cannot stretch one read
            if time.monotonic() > deadline:
                raise ImageFetchError(f"the image took longer than {timeout} s to arrive")
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise ImageFetchError(f"the image is larger than {max_bytes} bytes")
            chunks.append(chunk)
        return reply.status, None, (b"".join(chunks), content_type)
    except (OSError, http.client.HTTPException) as error:
        if time.monotonic() >= deadline:
            raise ImageFetchError(f"the image took longer than {timeout} s to arrive") from error
        raise ImageFetchError(f"{host} could not be reached: {type(error).__name__}") from error
    finally:
        watchdog.cancel()
        connection.close()


def _shut(connection):
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
