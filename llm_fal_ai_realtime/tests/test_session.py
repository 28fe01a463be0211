import jwt

from odoo.tests import tagged

from .common import FalRealtimeCase

ROUTE = "/llm_fal_ai_realtime/session"


@tagged("post_install", "-at_install")
class TestSessionTicket(FalRealtimeCase):
    def decode(self, ticket):
        return jwt.decode(ticket, self.secret, algorithms=["HS256"], audience="fal-realtime")

    def test_owner_gets_driver_ticket_with_claims(self):
        """The thread's owner gets a driver ticket carrying exactly the agreed claims."""
        self.authenticate("rt_owner", "rt_owner")
        result = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})["result"]
        self.assertEqual(set(result), {"url", "ticket", "app", "session", "role", "expires_in"})
        self.assertEqual(result["app"], "local/preview")
        self.assertEqual(result["role"], "driver")
        self.assertEqual(result["expires_in"], 120)
        relay = self.env["llm.fal.realtime.relay"]._get_config()["relay_url"]
        ws_base = relay.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        self.assertEqual(result["url"], f"{ws_base}/local/preview/realtime?session={result['session']}")
        self.assertNotIn("fal_jwt_token", result["url"])
        claims = self.decode(result["ticket"])
        self.assertEqual(set(claims), {"iss", "sub", "aud", "apps", "exp", "iat", "jti", "session", "role"})
        issuer = self.env["ir.config_parameter"].sudo().get_param("llm_fal_ai_realtime.issuer")
        self.assertEqual(claims["iss"], issuer, "the issuer set once, not web.base.url")
        self.assertEqual(claims["sub"], str(self.owner.id))
        self.assertEqual(claims["aud"], "fal-realtime")
        self.assertEqual(claims["apps"], ["local/preview"])
        self.assertEqual(claims["exp"] - claims["iat"], 120)
        self.assertEqual(claims["role"], "driver")
        self.assertEqual(claims["session"], result["session"])
        self.assertRegex(claims["session"], r"^[0-9a-f]{32}$")
        again = self.decode(self.jsonrpc(ROUTE, {"thread_id": self.thread.id,
                                                  "model_id": self.preview_model.id})["result"]["ticket"])
        self.assertNotEqual(again["jti"], claims["jti"], "every ticket has its own jti")
        self.assertEqual(again["session"], claims["session"], "the live session of a thread is stable")

    def test_ticket_not_signed_with_another_secret(self):
        """A ticket does not verify with any other secret."""
        self.authenticate("rt_owner", "rt_owner")
        params = {"thread_id": self.thread.id, "model_id": self.preview_model.id}
        ticket = self.jsonrpc(ROUTE, params)["result"]["ticket"]
        with self.assertRaises(jwt.InvalidSignatureError):
            jwt.decode(ticket, "another-secret-0123456789abcdef-0123456789", algorithms=["HS256"],
                       audience="fal-realtime")

    def test_model_defaults_to_the_threads_model(self):
        """Without model_id, the thread's own model is opened."""
        self.authenticate("rt_owner", "rt_owner")
        result = self.jsonrpc(ROUTE, {"thread_id": self.thread.id})["result"]
        self.assertEqual(result["app"], "local/preview")

    def test_follower_gets_viewer_ticket_for_the_same_session(self):
        """Another participant of the thread watches the same live session as a viewer."""
        self.authenticate("rt_owner", "rt_owner")
        driver = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})["result"]
        self.authenticate("rt_follower", "rt_follower")
        viewer = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})["result"]
        self.assertEqual(viewer["role"], "viewer")
        claims = self.decode(viewer["ticket"])
        self.assertEqual(claims["role"], "viewer")
        self.assertEqual(claims["sub"], str(self.follower.id))
        self.assertEqual(claims["session"], driver["session"])

    def test_session_differs_per_thread(self):
        """Two threads never share a live session."""
        self.authenticate("rt_owner", "rt_owner")
        one = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})["result"]
        two = self.jsonrpc(ROUTE, {"thread_id": self.other_thread.id, "model_id": self.preview_model.id})["result"]
        self.assertNotEqual(one["session"], two["session"])

    def test_non_realtime_model_refused(self):
        """A thread whose model has no realtime endpoint gets no ticket."""
        self.thread.sudo().model_id = self.plain_model
        self.authenticate("rt_owner", "rt_owner")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id})
        self.assertRpcError(response, "odoo.exceptions.UserError", "has no realtime endpoint")

    def test_app_not_allowed_refused(self):
        """A thread whose realtime model's app is not in the allowed apps gets no ticket."""
        self.thread.sudo().model_id = self.turbo_model
        self.authenticate("rt_owner", "rt_owner")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id})
        self.assertRpcError(response, "odoo.exceptions.UserError", "fal-ai/fast-turbo-diffusion is not allowed")

    def test_the_browser_cannot_choose_another_model(self):
        """The ticket's app is the thread's model: a model_id other than the thread's is refused."""
        self.authenticate("rt_owner", "rt_owner")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.lcm_model.id})
        self.assertRpcError(response, "odoo.exceptions.UserError", "now uses local/preview")

    def test_not_configured_refused(self):
        """Without a shared secret nobody gets a ticket, and the error says what to do."""
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.shared_secret", False)
        self.authenticate("rt_owner", "rt_owner")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})
        self.assertRpcError(response, "odoo.exceptions.UserError", "relay URL and shared secret")

    def test_bad_input_refused(self):
        """Malformed parameters get a clear error, not a crash."""
        self.authenticate("rt_owner", "rt_owner")
        response = self.jsonrpc(ROUTE, {"thread_id": "1; drop", "model_id": self.preview_model.id})
        self.assertRpcError(response, "odoo.exceptions.UserError", "thread_id must be a positive integer")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id, "x": 1})
        self.assertRpcError(response, "odoo.exceptions.UserError", "Unexpected parameters: x")
        response = self.jsonrpc(ROUTE, {"thread_id": 999999999, "model_id": self.preview_model.id})
        self.assertRpcError(response, "odoo.exceptions.UserError", "does not exist")
        response = self.jsonrpc(ROUTE, {"thread_id": 999999999})
        self.assertRpcError(response, "odoo.exceptions.UserError", "does not exist")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": -3})
        self.assertRpcError(response, "odoo.exceptions.UserError", "model_id must be a positive integer")

    def test_anonymous_refused(self):
        """The endpoint needs a logged-in user."""
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})
        self.assertRpcError(response, "odoo.http.SessionExpiredException", "Session expired")

    def test_ticket_lifetime_is_capped_at_ten_minutes(self):
        """A lifetime parameter above 600 s (set outside the settings form) still gives tickets of at most 600 s."""
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.ticket_lifetime", "3600")
        self.authenticate("rt_owner", "rt_owner")
        result = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})["result"]
        claims = self.decode(result["ticket"])
        self.assertEqual(claims["exp"] - claims["iat"], 600)
        self.assertEqual(result["expires_in"], 600)

    def test_ticket_lifetime_has_a_floor(self):
        """A lifetime parameter below 30 s gives 30 s tickets: the canvas renews at 80 %, so shorter would thrash."""
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.ticket_lifetime", "5")
        self.authenticate("rt_owner", "rt_owner")
        result = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})["result"]
        claims = self.decode(result["ticket"])
        self.assertEqual(claims["exp"] - claims["iat"], 30)

    def test_https_relay_gives_wss_url(self):
        """An https relay URL (with a path prefix) becomes a wss:// URL under the same prefix."""
        self.env["ir.config_parameter"].sudo().set_param("llm_fal_ai_realtime.relay_url", "https://relay.example.com/rt/")
        self.authenticate("rt_owner", "rt_owner")
        result = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "model_id": self.preview_model.id})["result"]
        self.assertEqual(result["url"], f"wss://relay.example.com/rt/local/preview/realtime?session={result['session']}")
