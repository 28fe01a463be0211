"""fal's key server and media host, stood in for on 127.0.0.1: nothing in these tests leaves loopback.

The keys are ED25519 keys generated here, published as a JWKS the way fal publishes its own;
deliveries are signed the way fal's docs spell it (request id, user id, timestamp and the body's
SHA-256 hex digest, joined by newlines; the signature in hex).
"""

import base64
import hashlib
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization
from PIL import Image

JWKS_PATH = "/.well-known/jwks.json"


def png_bytes(color=(30, 120, 200), size=(96, 64)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def public_jwk(private_key, kid):
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), "kid": kid}


def signed_headers(private_key, request_id, body, timestamp=None, user_id="fal-user-1"):
    """Headers of a delivery signed with ``private_key``, as fal sends them."""
    timestamp = str(int(time.time() if timestamp is None else timestamp))
    message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()
    return {
        "Content-Type": "application/json",
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user_id,
        "X-Fal-Webhook-Timestamp": timestamp,
        "X-Fal-Webhook-Signature": private_key.sign(message).hex(),
    }


class LoopbackFal:
    """An HTTP server on 127.0.0.1 serving a JWKS and files, counting what was asked for.

    It also misbehaves on request: ``delays`` (path -> seconds before answering), ``redirects``
    (path -> Location) and ``drips`` (path -> (content type, body, seconds between bytes)).
    """

    def __init__(self):
        self.published = {}
        self.files = {}
        self.delays = {}
        self.redirects = {}
        self.drips = {}
        self.hits = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                stand_in.hits.append(self.path)
                time.sleep(stand_in.delays.get(self.path, 0))
                if self.path in stand_in.redirects:
                    self.send_response(302)
                    self.send_header("Location", stand_in.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path in stand_in.drips:
                    self.drip(*stand_in.drips[self.path])
                    return
                if self.path.endswith("jwks.json"):  # fal's path, or a test's own
                    keys = [public_jwk(key, kid) for kid, key in stand_in.published.items()]
                    content_type, body = "application/json", json.dumps({"keys": keys}).encode()
                elif self.path in stand_in.files:
                    content_type, body = stand_in.files[self.path]
                else:
                    self.send_error(404)
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # a client that stopped waiting (a stalled answer, cut at its deadline)

            def drip(self, content_type, body, interval):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for index in range(len(body)):
                        self.wfile.write(body[index:index + 1])
                        self.wfile.flush()
                        time.sleep(interval)
                except OSError:
                    pass  # the client gave up, as it should

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="loopback-fal", daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def publish(self, **keys):
        """Replace the published key set with these ``kid=private key`` pairs."""
        self.published = dict(keys)

    def count(self, path):
        return self.hits.count(path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
