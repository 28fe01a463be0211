"""fal's signed webhook deliveries: who may speak for fal, checked before a result is believed.

fal signs every webhook delivery with ED25519. The headers ``X-Fal-Webhook-Request-Id``,
``X-Fal-Webhook-User-Id`` and ``X-Fal-Webhook-Timestamp`` (Unix seconds), and the SHA-256 hex
digest of the raw body, joined by newlines, are the signed message; ``X-Fal-Webhook-Signature``
is the signature in hex. fal publishes its public keys as a JWKS
(https://rest.alpha.fal.ai/.well-known/jwks.json) and says to cache it for up to 24 hours.

A delivery names no key, so every key of the set is tried. A signature that no cached key
verifies counts as made with a key we have not seen: the set is fetched again, at most once per
``REFRESH_COOLDOWN`` seconds per process (a failed fetch too), so that forged deliveries cannot make
Odoo hammer the key server, and a key fal has just rotated in is still picked up within seconds.
"""

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

import jwt
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_logger = logging.getLogger(__name__)

FAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
REPLAY_WINDOW_SECONDS = 300  # fal's own examples accept a timestamp within 5 minutes of now
KEY_SET_MAX_AGE = 24 * 60 * 60
REFRESH_COOLDOWN = 30
FETCH_TIMEOUT = 10
MAX_KEY_SET_BYTES = 64 * 1024
MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658; a longer one is malformed, never parsed

HEADER_REQUEST_ID = "X-Fal-Webhook-Request-Id"
HEADER_USER_ID = "X-Fal-Webhook-User-Id"
HEADER_TIMESTAMP = "X-Fal-Webhook-Timestamp"
HEADER_SIGNATURE = "X-Fal-Webhook-Signature"
SIGNED_HEADERS = (HEADER_REQUEST_ID, HEADER_USER_ID, HEADER_TIMESTAMP)


class WebhookRejected(Exception):
    """Raised when a delivery fails a check. The message names the check, never the body."""


class KeySetUnavailable(WebhookRejected):
    """Raised when fal's key set cannot be fetched or holds no ED25519 key: nothing can be verified now."""


def signed_message(request_id, user_id, timestamp, body):
    """The bytes fal signs for a delivery.

    :param request_id: the ``X-Fal-Webhook-Request-Id`` header
    :param user_id: the ``X-Fal-Webhook-User-Id`` header
    :param timestamp: the ``X-Fal-Webhook-Timestamp`` header, as sent
    :param body: the raw request body (bytes)
    """
    return "\n".join((request_id, user_id, timestamp, hashlib.sha256(body).hexdigest())).encode()


@dataclass
class _KeySet:
    keys: list | None  # None: never fetched successfully
    fetched_at: float  # when ``keys`` were fetched
    attempted_at: float  # the last fetch, whether it worked or not
    error: str = ""  # why the last fetch failed, or ""


class KeySetCache:
    """fal's public keys per key-set URL, fetched on first use, kept a day, refetched on an unknown signer.

    A fetch is tried at most once per ``cooldown`` per URL, whether it works or not: while fal's keys
    are unreachable, anonymous deliveries are answered from the cached failure without any outbound
    request. A fetch is single-flight per URL and runs outside the cache's lock, so a slow key server
    delays no other URL; a delivery arriving while its URL is being fetched is answered at once (fal
    retries it) rather than wait for the fetch's timeout.

    One per process (``KEY_SETS``); Odoo's workers each keep their own, which costs one fetch each.
    """

    def __init__(self, max_age=KEY_SET_MAX_AGE, cooldown=REFRESH_COOLDOWN, timeout=FETCH_TIMEOUT):
        self.max_age = max_age
        self.cooldown = cooldown
        self.timeout = timeout
        self._sets = {}
        self._fetching = {}  # url -> the lock its one fetch holds
        self._lock = threading.Lock()  # guards the two dicts only; never held during a fetch

    def keys(self, url, refresh=False):
        """The ED25519 public keys published at ``url``.

        :param url: the JWKS URL
        :param refresh: fetch again because no cached key verified a signature; refused (None) while
            the last fetch is younger than the cooldown, or while another request fetches them
        :return: list of ``Ed25519PublicKey``, or None when a refresh was not allowed
        :raise KeySetUnavailable: the set could not be fetched (now or within the cooldown), holds no
            ED25519 key, or is being fetched by another request
        """
        with self._lock:
            cached = self._sets.get(url)
            fetch_lock = self._fetching.setdefault(url, threading.Lock())
        now = time.monotonic()
        usable = cached.keys if cached and cached.keys and now - cached.fetched_at < self.max_age else None
        if usable and not refresh:
            return usable
        if cached and now - cached.attempted_at < self.cooldown:
            if usable:
                return None
            raise KeySetUnavailable(f"{cached.error or 'no usable key set'} (not fetched again for "
                                    f"{self.cooldown} s)")
        if not fetch_lock.acquire(blocking=False):
            if usable:
                return None
            raise KeySetUnavailable("fal's key set is being fetched by another request; try again shortly")
        try:
            try:
                keys = self._fetch(url)
            except KeySetUnavailable as error:
                with self._lock:
                    self._sets[url] = _KeySet(cached.keys if cached else None, cached.fetched_at if cached else 0.0,
                                              time.monotonic(), str(error))
                raise
            fetched_at = time.monotonic()
            with self._lock:
                self._sets[url] = _KeySet(keys, fetched_at, fetched_at)
            return keys
        finally:
            fetch_lock.release()

    def _fetch(self, url):
        try:
            with requests.get(url, timeout=self.timeout, stream=True, headers={"Accept": "application/json"}) as reply:
                reply.raise_for_status()
                raw = reply.raw.read(MAX_KEY_SET_BYTES + 1, decode_content=True)
            if len(raw) > MAX_KEY_SET_BYTES:
                raise KeySetUnavailable(f"the key set at {url} is larger than {MAX_KEY_SET_BYTES} bytes")
            key_set = jwt.PyJWKSet.from_json(raw.decode())
        except KeySetUnavailable:
            raise
        except (requests.RequestException, ValueError, jwt.PyJWKSetError, jwt.PyJWKError) as error:
            raise KeySetUnavailable(f"fal's key set could not be fetched from {url}: {error}") from error
        keys = [jwk.key for jwk in key_set.keys if isinstance(jwk.key, Ed25519PublicKey)]
        if not keys:
            raise KeySetUnavailable(f"the key set at {url} holds no ED25519 key")
        _logger.info("fal webhook key set fetched: url=%s keys=%s", url, len(keys))
        return keys


KEY_SETS = KeySetCache()


def _verifies(keys, signature, message):
    for key in keys:
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False


def verify_delivery(headers, body, jwks_url, key_sets=None, now=None, window=REPLAY_WINDOW_SECONDS):
    """Check that a webhook delivery is fal's own, recent, and unaltered.

    :param headers: the request headers (a case-insensitive mapping such as werkzeug's)
    :param body: the raw request body (bytes)
    :param jwks_url: where fal's public keys are published
    :param key_sets: the key cache (default: this process's ``KEY_SETS``)
    :param now: the current Unix time (default: ``time.time()``)
    :param window: seconds a timestamp may differ from now
    :return: the signed request id
    :raise WebhookRejected: naming the check that failed
    :raise KeySetUnavailable: fal's keys cannot be had right now
    """
    key_sets = key_sets or KEY_SETS
    request_id, user_id, timestamp = (headers.get(name) for name in SIGNED_HEADERS)
    signature_hex = headers.get(HEADER_SIGNATURE)
    missing = [name for name, value in zip(SIGNED_HEADERS + (HEADER_SIGNATURE,),
                                           (request_id, user_id, timestamp, signature_hex)) if not value]
    if missing:
        raise WebhookRejected(f"unsigned: no {', '.join(missing)} header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > MAX_TIMESTAMP_DIGITS:
        raise WebhookRejected("the timestamp is not a Unix time in seconds")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > window:
        raise WebhookRejected(f"the timestamp is outside the {window} s replay window")
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError as error:
        raise WebhookRejected("the signature is not hex") from error
    if len(signature) != 64:
        raise WebhookRejected("the signature is not 64 bytes long")
    message = signed_message(request_id, user_id, timestamp, body)
    if _verifies(key_sets.keys(jwks_url), signature, message):
        return request_id
    fresh = key_sets.keys(jwks_url, refresh=True)  # None: refreshed too recently to try again
    if fresh is not None and _verifies(fresh, signature, message):
        return request_id
    raise WebhookRejected("the signature matches none of fal's published keys")
