import json
import os
import time
from urllib.parse import quote

import jwt
import msgpack
import websocket

from odoo.tests import tagged

from .common import FalRealtimeCase

ROUTE = "/llm_fal_ai_realtime/session"
ROTATED_RELAY_ENV = "FAL_REALTIME_TEST_ROTATED_RELAY_URL"
ROTATED_SECRET_ENV = "FAL_REALTIME_TEST_ROTATED_SECRET"
ROTATED_KID = "rotated"  # the key id scripts/test-odoo gives the relays for the new secret
LEEWAY = 5  # the relay's RELAY_TICKET_LEEWAY (its default)


class RelayStream:
    """A real WebSocket to the relay with a ticket from Odoo, as the browser opens it."""

    def __init__(self, url, ticket, timeout=15):
        self.conn = websocket.create_connection(f"{url}&fal_jwt_token={quote(ticket)}", timeout=timeout,
                                                suppress_origin=True)

    def send(self, **inputs):
        self.conn.send_binary(msgpack.packb(inputs, use_bin_type=True))

    def next(self, timeout=15):
        """The next frame (a dict), x-fal-message or x-fal-error (a dict with ``type``), or the close code."""
        self.conn.settimeout(timeout)
        opcode, data = self.conn.recv_data(control_frame=False)
        if opcode == websocket.ABNF.OPCODE_BINARY:
            return msgpack.unpackb(data, raw=False)
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return json.loads(data)
        return {"close": int.from_bytes(data[:2], "big") if len(data) >= 2 else None}

    def frame(self, timeout=15):
        """The next frame or error, past the x-fal-messages (timings, session state) the relay passes on."""
        while True:  # bounded by the socket timeout: the relay sends a frame or closes
            message = self.next(timeout)
            if message.get("type") != "x-fal-message":
                return message

    def close(self):
        self.conn.shutdown()


@tagged("post_install", "-at_install")
class TestRelayLifecycle(FalRealtimeCase):
    """Odoo's tickets against real relays (started by scripts/test-odoo): secret rotation and tickets that end."""

    def ticket(self, login, thread):
        self.authenticate(login, login)
        result = self.jsonrpc(ROUTE, {"thread_id": thread.id, "model_id": self.preview_model.id})
        self.assertIn("result", result, result)
        return result["result"]

    def assertStreams(self, url, ticket, seed):
        for _attempt in range(20):  # bounded: the relay frees the thread's driver seat once the last stream is gone
            stream = RelayStream(url, ticket)
            try:
                stream.send(prompt="rotation", seed=seed, width=64, height=64, num_inference_steps=1)
                frame = stream.frame()
            finally:
                stream.close()
            if frame.get("error") != "SESSION_BUSY":
                break
            time.sleep(0.2)
        self.assertEqual(frame.get("seed"), seed, frame)

    def assertRefused(self, url, ticket, error):
        stream = RelayStream(url, ticket)
        try:
            payload = stream.frame()
            self.assertEqual((payload.get("type"), payload.get("error")), ("x-fal-error", error), payload)
        finally:
            stream.close()

    def test_rotation_overlap_then_old_secret_refused(self):
        """Rotating in Settings: new tickets carry the new key id; tickets minted under the old and the new secret
        both stream during the overlap; on the relay after the overlap only the new one does."""
        relay_url = self.require_relay()
        rotated_url = os.environ.get(ROTATED_RELAY_ENV, "")
        new_secret = os.environ.get(ROTATED_SECRET_ENV, "")
        self.assertTrue(rotated_url and new_secret, f"{ROTATED_RELAY_ENV}/{ROTATED_SECRET_ENV} are not set: run the "
                        "Odoo tests through scripts/test-odoo")
        old = self.ticket("rt_owner", self.thread)
        self.assertNotIn("kid", jwt.get_unverified_header(old["ticket"]))

        self.env["res.config.settings"].create({
            "fal_realtime_shared_secret": new_secret, "fal_realtime_shared_secret_kid": ROTATED_KID,
        }).execute()
        params = self.env["ir.config_parameter"].sudo()
        self.assertEqual(params.get_param("llm_fal_ai_realtime.shared_secret"), new_secret)
        self.assertFalse(params.get_param("llm_fal_ai_realtime.previous_shared_secret"), "the old secret is not kept")
        self.assertFalse(params.search([("value", "=", self.secret)]), "nowhere in the database")
        self.assertFalse(params.get_param("llm_fal_ai_realtime.previous_secret_kid"), "the old secret had no key id")
        self.assertTrue(params.get_param("llm_fal_ai_realtime.previous_secret_until"))
        form = self.env["res.config.settings"].create({})
        self.assertEqual(form.fal_realtime_secret_kid, ROTATED_KID)
        self.assertIn("previous secret (key id none) live until", form.fal_realtime_previous_secret_info)
        self.assertNotIn(self.secret, form.fal_realtime_previous_secret_info)

        new = self.ticket("rt_owner", self.thread)
        self.assertEqual(jwt.get_unverified_header(new["ticket"])["kid"], ROTATED_KID)
        jwt.decode(new["ticket"], new_secret, algorithms=["HS256"], audience="fal-realtime")

        # The overlap: the relay holds both secrets.
        self.assertStreams(old["url"], old["ticket"], seed=11)
        self.assertStreams(new["url"], new["ticket"], seed=12)
        verdict = self.env["res.config.settings"].fal_realtime_check()  # the stored secret and its kid
        self.assertTrue(verdict["ok"], verdict["message"])
        # After it: the relay holds only the new secret.
        after = {key: value.replace(relay_url.replace("http", "ws", 1), rotated_url.replace("http", "ws", 1), 1)
                 for key, value in (("old", old["url"]), ("new", new["url"]))}
        self.assertNotEqual(after["old"], old["url"])
        self.assertStreams(after["new"], new["ticket"], seed=13)
        self.assertRefused(after["old"], old["ticket"], "UNAUTHORIZED")

    def test_removed_follower_stops_watching_within_one_ticket_lifetime(self):
        """A follower watches the owner drive; once removed from the thread Odoo refuses them a new ticket, and the
        relay closes their connection with TICKET_EXPIRED when the one they hold ends (lifetime + the leeway)."""
        self.require_relay()
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.ticket_lifetime", "30")
        viewer_ticket = self.ticket("rt_follower", self.thread)
        self.assertEqual(viewer_ticket["role"], "viewer")
        issued = jwt.decode(viewer_ticket["ticket"], options={"verify_signature": False})
        time.sleep(1.1)  # the driver's ticket ends at least a second later: the viewer's own ticket ends first
        driver_ticket = self.ticket("rt_owner", self.thread)
        viewer = RelayStream(viewer_ticket["url"], viewer_ticket["ticket"])
        driver = RelayStream(driver_ticket["url"], driver_ticket["ticket"])
        try:
            self.assertEqual(viewer.next().get("action"), "session_waiting")
            driver.send(prompt="watched", seed=21, width=64, height=64, num_inference_steps=1)
            self.assertEqual(driver.frame().get("seed"), 21)
            self.assertEqual(viewer.frame().get("seed"), 21)

            self.thread.sudo().message_unsubscribe(partner_ids=self.follower.partner_id.ids)
            self.authenticate("rt_follower", "rt_follower")
            renewal = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})
            self.assertIn("error", renewal, "a removed follower must not get a new ticket")

            ending = None
            deadline = issued["exp"] + LEEWAY + 5
            while time.time() < deadline:  # bounded: the relay's frames, then its error and close
                message = viewer.next(timeout=max(0.1, deadline - time.time()))
                if message.get("type") == "x-fal-error":
                    ending = message
                    break
            self.assertIsNotNone(ending, "the viewer was still connected after its ticket's lifetime")
            self.assertEqual(ending["error"], "TICKET_EXPIRED", ending)
            self.assertEqual(viewer.next(), {"close": 4001})
            self.assertLessEqual(time.time(), issued["exp"] + LEEWAY + 2)
            self.assertGreaterEqual(time.time(), issued["exp"] + LEEWAY - 1)
        finally:
            viewer.close()
            driver.close()
