import base64
import io

from PIL import Image

from odoo.tests import tagged

from .common import FalRealtimeCase

ROUTE = "/llm_fal_ai_realtime/keep"


def jpeg_bytes(color=(200, 40, 90)):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format="JPEG")
    return buffer.getvalue()


@tagged("post_install", "-at_install")
class TestKeep(FalRealtimeCase):
    def test_keep_posts_the_frame_as_a_binary_attachment(self):
        """Keep posts a message by the user with the frame stored as a binary attachment, prompt and seed."""
        raw = jpeg_bytes()
        self.authenticate("rt_owner", "rt_owner")
        result = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "image": base64.b64encode(raw).decode(),
                                      "prompt": "a red fox <b>in snow</b>", "seed": 7, "app": "local/preview"})
        self.assertIn("result", result, result)
        message = self.env["mail.message"].browse(result["result"]["message_id"])
        store = result["result"]["store"]
        self.assertEqual([m["id"] for m in store["mail.message"]], [message.id])
        self.assertEqual([(a["id"], a["mimetype"]) for a in store["ir.attachment"]],
                         [(message.attachment_ids.id, "image/jpeg")], "the chat needs the attachment to show it")
        self.assertEqual(message.model, "llm.thread")
        self.assertEqual(message.res_id, self.thread.id)
        self.assertEqual(message.author_id, self.owner.partner_id)
        self.assertEqual(message.llm_role, "user")
        self.assertIn("a red fox &lt;b&gt;in snow&lt;/b&gt;", str(message.body))
        self.assertIn("seed 7", str(message.body))
        self.assertEqual(message.body_json, {"prompt": "a red fox <b>in snow</b>", "seed": 7})
        self.assertEqual(len(message.attachment_ids), 1)
        attachment = message.attachment_ids
        self.assertEqual(attachment.type, "binary")
        self.assertFalse(attachment.url)
        self.assertEqual(attachment.mimetype, "image/jpeg")
        self.assertEqual(attachment.raw, raw)
        self.assertEqual((attachment.res_model, attachment.res_id), ("llm.thread", self.thread.id))
        self.assertTrue(attachment.name.endswith(".jpg"))

    def test_keep_refuses_what_is_not_an_image(self):
        """Keep refuses bytes that are not an image, and text that is not base64."""
        self.authenticate("rt_owner", "rt_owner")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "prompt": "x", "seed": 1,
                                        "image": base64.b64encode(b"<svg onload=alert(1)>").decode()})
        self.assertRpcError(response, "odoo.exceptions.UserError", "not a JPEG, PNG or WebP image")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "prompt": "x", "seed": 1, "image": "%%%"})
        self.assertRpcError(response, "odoo.exceptions.UserError", "not valid base64")
        response = self.jsonrpc(ROUTE, {"thread_id": self.thread.id, "prompt": "x", "seed": "seven",
                                        "image": base64.b64encode(jpeg_bytes()).decode()})
        self.assertRpcError(response, "odoo.exceptions.UserError", "seed must be a non-negative integer")
        self.assertFalse(self.thread.message_ids.attachment_ids)
